#pragma once
/// <skein/script.hpp>: the scripting APIs — Scriptling's `threads` library,
/// Langoost's `thread` and `runtime` modules — written once
/// over a dynamic `Value`, so that an interpreter offers them with little glue.
///
/// What a host (the glue for one interpreter) provides:
///  - `Function`: a script function in a portable form (e.g. Lua bytecode)
///    that can be loaded into another environment; the host converts its
///    own function values to it (and says their parameter names, for
///    keyword arguments);
///  - `Environment`: one interpreter instance (a lua_State, a VM) that can
///    call a `Function` with `Value` arguments; used by one thread at a time;
///  - `Host::create_environment(globals)`: a fresh environment with only the
///    libraries and these modules, optionally with a copy of a caller's
///    globals (Scriptling's "clone" isolation);
///  - `Caller` (per call, optional): what only the calling environment can do
///    — snapshot its globals, call one of its own arguments in place;
///  - a check for cancellation inside long-running script code: the host
///    polls `skein::this_task::cancelled()` (e.g. from an instruction-count
///    hook) and raises a script error when it is true.
/// The host turns each `Module`'s `NativeFunction`s and each handle's
/// `Method`s into callables of its language, converting arguments to `Value`
/// and calling `invoke`, which maps every error to a `ScriptError` whose
/// message is ready to show to the script.

#include "detail/config.hpp"  // first: the C++20 check

#include "script/value.hpp"
#include "script/host.hpp"
#include "script/runtime.hpp"
#include "script/call.hpp"
#include "script/objects.hpp"
#include "script/modules.hpp"
