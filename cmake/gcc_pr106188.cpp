// Configure-time probe for GCC bug 106188 (g++ before 13): a coroutine that
// declares no variable at its outermost scope and has a co_await in the
// condition of an `if` gets a wrong frame layout, and crashes when resumed or
// destroyed. Self-contained (no skein): a minimal eager task type. Exit
// status 0: the compiler is fine; a crash or 1: it has the bug.
#include <coroutine>
#include <cstdlib>
#include <exception>
#include <utility>

namespace {

struct Task {
  struct promise_type {
    int value = 0;
    std::coroutine_handle<> continuation;
    Task get_return_object() { return Task{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    struct Final {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        auto c = h.promise().continuation;
        return c ? c : std::noop_coroutine();
      }
      void await_resume() noexcept {}
    };
    Final final_suspend() noexcept { return {}; }
    void return_value(int v) { value = v; }
    void unhandled_exception() { std::terminate(); }
  };
  explicit Task(std::coroutine_handle<promise_type> h) : h(h) {}
  Task(Task&& o) noexcept : h(std::exchange(o.h, {})) {}
  ~Task() {
    if (h) h.destroy();
  }
  bool await_ready() const noexcept { return h.done(); }
  void await_suspend(std::coroutine_handle<> c) { h.promise().continuation = c; }
  int await_resume() { return h.promise().value; }
  std::coroutine_handle<promise_type> h;
};

// Resumed later by main(), so that the condition's co_await really suspends.
std::coroutine_handle<> pending;
struct Later {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept { pending = h; }
  bool await_resume() const noexcept { return true; }
};
Task inner() { co_return co_await Later{} ? 1 : 0; }
Task outer() {
  if (co_await inner()) co_return 42;  // no variable at the outermost scope
  co_return 7;
}

}  // namespace

int main() {
  Task t = outer();
  if (!pending) return 1;
  pending.resume();
  if (!t.h.done()) return 1;
  return t.h.promise().value == 42 ? 0 : 1;
}
