#pragma once
// The one declaration of skein::Promise (its definition is in
// promise_handle.hpp), for the headers that name it before it is defined.

namespace skein {
template <class T = void>
class Promise;
}  // namespace skein
