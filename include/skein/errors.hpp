#pragma once
/// Error types and the unhandled-error handler (docs/api/errors.md):
/// Cancelled, Closed, UsageError, RepeatedError, set_unhandled_error_handler.

#include "detail/config.hpp"  // first: the C++20 check

#include "detail/error_types.hpp"
