//! The domain core: policy, risk and the request state machine.
//!
//! Nothing in here performs I/O or reads a clock; every fact (identity,
//! time, history) is passed in, so each rule is testable by table.

pub mod break_glass;
pub mod model;
pub mod notify;
pub mod rate;
pub mod replay;
pub mod risk;
pub mod routing;
pub mod sanitize;
pub mod sudoers;
pub mod workflow;
