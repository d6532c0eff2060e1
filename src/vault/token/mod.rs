//! Payment tokens (支付标记): numbers, domain controls, lifecycle.

pub mod controls;
pub mod lifecycle;
pub mod number;
mod store;

pub use controls::{ControlRefusal, ControlsSpec, DomainControls, Usage, UseRequest};
pub use lifecycle::{LifecycleError, TokenStatus};
pub use number::{TokenBinRange, TokenNumber};
pub use store::TokenView;
