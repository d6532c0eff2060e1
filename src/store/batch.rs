//! An atomic, conditional write: preconditions on current values, then puts
//! and deletes, all or nothing.

/// What a key must hold for a batch to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    Absent,
    Equals(Vec<u8>),
}

#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub(crate) expectations: Vec<(Vec<u8>, Expect)>,
    pub(crate) writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    /// The batch applies only if `key` holds no value.
    pub fn expect_absent(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        self.expectations.push((key.into(), Expect::Absent));
        self
    }

    /// The batch applies only if `key` holds exactly `value`.
    pub fn expect_equals(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.expectations.push((key.into(), Expect::Equals(value.into())));
        self
    }

    /// Adds a precondition matching what a read returned: present with that
    /// value, or absent.
    pub fn expect(&mut self, key: impl Into<Vec<u8>>, current: Option<&[u8]>) -> &mut Self {
        let expect = match current {
            Some(v) => Expect::Equals(v.to_vec()),
            None => Expect::Absent,
        };
        self.expectations.push((key.into(), expect));
        self
    }

    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.writes.push((key.into(), Some(value.into())));
        self
    }

    pub fn delete(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        self.writes.push((key.into(), None));
        self
    }

    /// Adds `other`'s preconditions and writes to this batch.
    pub fn append(&mut self, other: Batch) -> &mut Self {
        self.expectations.extend(other.expectations);
        self.writes.extend(other.writes);
        self
    }

    /// Appends `joined` (writes a caller joined) and returns its
    /// preconditions, to tell after a conflict whether it was theirs.
    pub fn join(&mut self, joined: Batch) -> Vec<(Vec<u8>, Expect)> {
        let expectations = joined.expectations.clone();
        self.append(joined);
        expectations
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}
