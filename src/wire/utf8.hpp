// Strict UTF-8 validation (RFC 3629), hand-written because the core may not depend on a library
// and the check is a few lines: v1 receivers must reject exactly what the original's
// bytes.decode('utf-8') rejects (overlong forms, surrogates, code points above U+10FFFF).
#pragma once

#include "nomq/bytes.hpp"

namespace nomq::detail {

// True if `text` is well-formed UTF-8 (the empty string is).
bool is_valid_utf8(Bytes text) noexcept;

}  // namespace nomq::detail
