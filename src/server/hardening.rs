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
