#pragma once
// The few Windows functions skein calls, declared here rather than by
// <windows.h>, whose macros (min, max, ...) a header-only library must not
// bring into its users' code. Each is declared exactly as <windows.h> (and
// <tlhelp32.h>) declare it, so that a user's own include of them agrees.
// All are in kernel32 except WaitOnAddress and WakeByAddressSingle: link with
// Synchronization.lib (-lsynchronization; CMake's skein::skein does it).

#if defined(_WIN32)
#include <cstddef>

struct tagTHREADENTRY32;  // <tlhelp32.h>'s THREADENTRY32 (process_thread_count passes its own layout)

extern "C" {
// Parking (parker.hpp)
__declspec(dllimport) int __stdcall WaitOnAddress(volatile void* address, void* compare, std::size_t size,
                                                  unsigned long milliseconds);
__declspec(dllimport) void __stdcall WakeByAddressSingle(void* address);
// Thread names (thread_name.hpp)
__declspec(dllimport) void* __stdcall GetCurrentThread();
__declspec(dllimport) long __stdcall SetThreadDescription(void* thread, const wchar_t* description);
// Thread identity, and per-thread state released at thread exit (park_registry.hpp, frame_alloc.hpp)
__declspec(dllimport) unsigned long __stdcall GetCurrentThreadId();
__declspec(dllimport) unsigned long __stdcall FlsAlloc(void(__stdcall* callback)(void*));
__declspec(dllimport) void* __stdcall FlsGetValue(unsigned long index);
__declspec(dllimport) int __stdcall FlsSetValue(unsigned long index, void* value);
// The process's thread count (deadlock_monitor.hpp); <tlhelp32.h> declares
// these three without dllimport.
void* __stdcall CreateToolhelp32Snapshot(unsigned long flags, unsigned long process_id);
int __stdcall Thread32First(void* snapshot, tagTHREADENTRY32* entry);
int __stdcall Thread32Next(void* snapshot, tagTHREADENTRY32* entry);
__declspec(dllimport) int __stdcall CloseHandle(void* handle);
__declspec(dllimport) unsigned long __stdcall GetCurrentProcessId();
}

#if defined(_MSC_VER)
#pragma comment(lib, "Synchronization.lib")
#endif

namespace skein::detail {
inline constexpr unsigned long kFlsOutOfIndexes = 0xFFFFFFFFul;  // FLS_OUT_OF_INDEXES
}  // namespace skein::detail
#endif
