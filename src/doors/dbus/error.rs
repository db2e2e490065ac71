//! Control errors as D-Bus errors: the socket's error code in CamelCase
//! under [`ERROR_PREFIX`] (`engine_failed` → `io.github.voxd.Error.EngineFailed`),
//! with the socket's message as the error's description. New error codes
//! get their D-Bus name without code here.

use zbus::message::{Header, Message};
use zbus::names::ErrorName;

use super::ERROR_PREFIX;
use crate::api::{ApiError, ErrorCode};

/// A method call's failure, as D-Bus callers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    name: ErrorName<'static>,
    message: String,
}

impl Error {
    pub fn invalid_params(message: impl Into<String>) -> Error {
        ApiError::new(ErrorCode::InvalidParams, message).into()
    }

    /// The bus's own `AccessDenied`: the caller may not use voxd.
    pub fn access_denied(message: String) -> Error {
        Error {
            name: ErrorName::from_static_str_unchecked("org.freedesktop.DBus.Error.AccessDenied"),
            message,
        }
    }

    /// The D-Bus error name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Error {
        let camel: String = e
            .code
            .as_str()
            .split('_')
            .flat_map(|word| {
                let mut chars = word.chars();
                chars
                    .next()
                    .map(|first| first.to_ascii_uppercase())
                    .into_iter()
                    .chain(chars)
            })
            .collect();
        let name = ErrorName::try_from(format!("{ERROR_PREFIX}.{camel}")).unwrap_or_else(|_| {
            ErrorName::from_static_str_unchecked("io.github.voxd.Error.Internal")
        });
        Error {
            name,
            message: e.message,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

impl std::error::Error for Error {}

impl zbus::DBusError for Error {
    fn create_reply(&self, call: &Header<'_>) -> zbus::Result<Message> {
        Message::error(call, self.name.as_ref())?.build(&(self.message.as_str(),))
    }

    fn name(&self) -> ErrorName<'_> {
        self.name.as_ref()
    }

    fn description(&self) -> Option<&str> {
        Some(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_become_camel_case_error_names() {
        let e = Error::from(ApiError::new(ErrorCode::EngineFailed, "boom"));
        assert_eq!(e.name(), "io.github.voxd.Error.EngineFailed");
        assert_eq!(zbus::DBusError::description(&e), Some("boom"));
        assert_eq!(
            Error::invalid_params("x").name(),
            "io.github.voxd.Error.InvalidParams"
        );
        assert_eq!(
            Error::from(ApiError::new(ErrorCode::ShuttingDown, "")).name(),
            "io.github.voxd.Error.ShuttingDown"
        );
    }
}
