//! Process-wide state: how the process shows itself (identity), its resource limits, its
//! credentials (the root policy and the privilege drop) and the system calls it may make
//! after the drop (seccomp).

pub mod identity;
pub mod limits;
pub mod privileges;
pub mod seccomp;
