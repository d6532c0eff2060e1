//! Process hardening at start-up: a process that holds keys and PANs must
//! never write a core dump, nor be readable through ptrace by other processes
//! of the same user.

use rustix::process::{set_dumpable_behavior, setrlimit, DumpableBehavior, Resource, Rlimit};

pub fn forbid_core_dumps() -> std::io::Result<()> {
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )?;
    set_dumpable_behavior(DumpableBehavior::NotDumpable)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use rustix::process::{dumpable_behavior, getrlimit, DumpableBehavior, Resource};

    /// Runs in the test process itself: it then writes no core dump either.
    #[test]
    fn no_core_dump_and_not_dumpable_after_start_up_hardening() {
        super::forbid_core_dumps().unwrap();
        let core = getrlimit(Resource::Core);
        assert_eq!((core.current, core.maximum), (Some(0), Some(0)));
        assert_eq!(dumpable_behavior().unwrap(), DumpableBehavior::NotDumpable);
    }
}
