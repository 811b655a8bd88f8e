// expect-first: not awaitable.*async_get
// `co_await q.get()` awaits the blocking form's result: the error names the async form.
#include <skein/skein.hpp>

skein::Promise<int> consumer(skein::Queue<int>& q) {
#ifdef SKEIN_CONTROL
  auto v = co_await q.async_get();
#else
  auto v = co_await q.get();
#endif
  co_return v.value_or(0);
}

int main() {
  skein::Queue<int> q(1);
  q.put(1);
  return consumer(q).get() == 1 ? 0 : 1;
}
