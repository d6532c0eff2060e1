//! Payment tokens (支付标记): numbers, domain controls, lifecycle.

pub mod controls;
pub mod lifecycle;
pub mod number;

pub use controls::{
    ChannelId, ControlRefusal, ControlsSpec, Currency, DomainControls, MerchantId, Usage, UseRequest,
};
pub use lifecycle::{LifecycleError, TokenStatus};
pub use number::{TokenBinRange, TokenNumber};
