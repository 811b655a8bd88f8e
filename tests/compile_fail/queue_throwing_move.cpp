// expect: needs a nothrow move-constructible T
// A Queue moves items under its lock and must not fail half-way through a hand-off.
#include <skein/queue.hpp>

struct Item {
  Item() = default;
  Item(const Item&) {}
#ifdef SKEIN_CONTROL
  Item(Item&&) noexcept {}
#else
  Item(Item&&) noexcept(false) {}
#endif
};

int main() { skein::Queue<Item> q; }
