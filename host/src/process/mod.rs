//! Process-wide state: how the process shows itself (identity), its resource limits, and
//! its credentials (the root policy and the privilege drop).

pub mod identity;
pub mod limits;
pub mod privileges;
