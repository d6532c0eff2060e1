//! How orchestration errors answer: the problem document for the error's
//! one code, never an input value.

use super::problem::Problem;
use crate::domain::error_code::Class;
use crate::orchestration::OrchestrationError;

impl From<OrchestrationError> for Problem {
    fn from(error: OrchestrationError) -> Self {
        let code = error.code();
        if matches!(code.class, Class::Internal | Class::Upstream) {
            tracing::error!(error = %error, "request failed behind the API");
        }
        Problem::from_code(code, error.to_string())
    }
}
