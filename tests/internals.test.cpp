// The runtime's internal building blocks on their own: the work-stealing
// deque (owner push/pop LIFO, thieves steal FIFO, growth, the last item raced
// by the owner and thieves), the event loop's MPSC queue (FIFO per producer,
// exact totals with many producers), and SKEIN_ASSERT (on in the test suite,
// and a violated invariant aborts with its message).
#include "support/common.hpp"

#include <algorithm>
#include <functional>
#include <iterator>
#include <string>
#include <atomic>
#include <thread>
#include <vector>

#if defined(__unix__)
#include <sys/wait.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <unistd.h>
#endif
#if defined(__SANITIZE_THREAD__)
#define SKEIN_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SKEIN_TEST_TSAN 1
#endif
#endif

using namespace test;
using skein::detail::MpscNode;
using skein::detail::MpscQueue;
using skein::detail::WsDeque;

namespace {
void* tag(std::uintptr_t i) { return reinterpret_cast<void*>(i << 4); }
std::uintptr_t untag(void* p) { return reinterpret_cast<std::uintptr_t>(p) >> 4; }
}  // namespace

TEST_CASE("WsDeque: the owner pops LIFO, a thief steals FIFO, and it grows past its first ring") {
  WsDeque d(2);  // 4 slots: pushing 100 grows it several times
  CHECK(d.empty());
  CHECK(d.pop() == nullptr);
  CHECK(d.steal() == nullptr);
  for (std::uintptr_t i = 1; i <= 100; ++i) d.push(tag(i));
  CHECK(d.size_approx() == 100);
  CHECK(untag(d.steal()) == 1);  // the oldest
  CHECK(untag(d.steal()) == 2);
  CHECK(untag(d.pop()) == 100);  // the newest
  CHECK(untag(d.pop()) == 99);
  std::vector<std::uintptr_t> rest;
  while (void* p = d.pop()) rest.push_back(untag(p));
  CHECK(rest.size() == 96);
  CHECK(std::is_sorted(rest.rbegin(), rest.rend()));
  CHECK(d.empty());
  // Reused after emptying.
  d.push(tag(7));
  CHECK(untag(d.steal()) == 7);
  CHECK(d.pop() == nullptr);
}

TEST_CASE("WsDeque: an owner and three thieves take every item exactly once") {
  Watchdog wd(60s);
  const int n = scaled(200000);
  WsDeque d(4);
  std::vector<std::atomic<int>> seen(static_cast<std::size_t>(n) + 1);
  std::atomic<bool> done{false};
  std::atomic<long> stolen{0};
  auto take = [&](void* p) { seen[untag(p)].fetch_add(1, std::memory_order_relaxed); };
  std::vector<std::thread> thieves;
  for (int t = 0; t < 3; ++t)
    thieves.emplace_back([&] {
      while (!done.load(std::memory_order_acquire) || !d.empty())
        if (void* p = d.steal()) {
          take(p);
          stolen.fetch_add(1, std::memory_order_relaxed);
        }
    });
  long popped = 0;
  for (int i = 1; i <= n; ++i) {
    d.push(tag(static_cast<std::uintptr_t>(i)));
    // Pop often, so that the owner races the thieves for the last item.
    if (i % 3 == 0)
      if (void* p = d.pop()) {
        take(p);
        ++popped;
      }
  }
  while (void* p = d.pop()) {
    take(p);
    ++popped;
  }
  done.store(true, std::memory_order_release);
  for (auto& t : thieves) t.join();
  int twice = 0, never = 0;
  for (int i = 1; i <= n; ++i) {
    const int k = seen[static_cast<std::size_t>(i)].load();
    twice += k > 1;
    never += k == 0;
  }
  CHECK(twice == 0);
  CHECK(never == 0);
  CHECK(popped + stolen.load() == n);
  MESSAGE("owner popped " << popped << ", thieves stole " << stolen.load());
}

namespace {
struct Item : MpscNode {
  int producer = 0;
  int seq = 0;
};
}  // namespace

TEST_CASE("MpscQueue: FIFO from one producer; empty and busy() when nothing is left") {
  MpscQueue q;
  CHECK(q.pop() == nullptr);
  CHECK_FALSE(q.busy());
  std::vector<Item> items(10);
  for (int i = 0; i < 10; ++i) {
    items[static_cast<std::size_t>(i)].seq = i;
    q.push(&items[static_cast<std::size_t>(i)]);
  }
  CHECK(q.busy());
  for (int i = 0; i < 10; ++i) {
    auto* it = static_cast<Item*>(q.pop());
    REQUIRE(it != nullptr);
    CHECK(it->seq == i);
  }
  CHECK(q.pop() == nullptr);
  CHECK_FALSE(q.busy());
  q.push(&items[0]);  // nodes may be pushed again once popped
  CHECK(q.pop() == &items[0]);
  CHECK_FALSE(q.busy());
}

TEST_CASE("MpscQueue: four producers, one consumer: every item once, each producer's in order") {
  Watchdog wd(60s);
  const int per = scaled(100000);
  constexpr int kProducers = 4;
  std::vector<std::vector<Item>> items;
  for (int p = 0; p < kProducers; ++p) items.emplace_back(static_cast<std::size_t>(per));
  for (int p = 0; p < kProducers; ++p)
    for (int i = 0; i < per; ++i) {
      Item& it = items[static_cast<std::size_t>(p)][static_cast<std::size_t>(i)];
      it.producer = p;
      it.seq = i;
    }
  std::vector<std::thread> producers;
  MpscQueue q;
  for (int p = 0; p < kProducers; ++p)
    producers.emplace_back([&, p] {
      for (auto& it : items[static_cast<std::size_t>(p)]) q.push(&it);
    });
  std::vector<int> next(kProducers, 0);
  long got = 0, out_of_order = 0;
  const long total = static_cast<long>(per) * kProducers;
  while (got < total) {
    if (auto* it = static_cast<Item*>(q.pop())) {
      if (it->seq != next[static_cast<std::size_t>(it->producer)]) ++out_of_order;
      next[static_cast<std::size_t>(it->producer)] = it->seq + 1;
      ++got;
    } else if (!q.busy()) {
      std::this_thread::yield();
    }
  }
  for (auto& t : producers) t.join();
  CHECK(out_of_order == 0);
  CHECK(got == total);
  CHECK(q.pop() == nullptr);
  CHECK_FALSE(q.busy());
}

TEST_CASE("SKEIN_ASSERT is on in the test suite, and a violated invariant aborts with its message") {
  static_assert(SKEIN_ASSERTS_ON == 1, "the test suite builds with SKEIN_ENABLE_ASSERTS");
#if defined(__unix__) && !defined(SKEIN_TEST_TSAN)  // TSan and fork() in a threaded process do not mix
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {  // the child: link a waiter twice
    dup2(fds[1], 2);
    skein::detail::WaiterList list;
    skein::detail::ThreadWaiter w;
    list.push_back(&w);
    list.push_back(&w);
    _exit(0);
  }
  close(fds[1]);
  std::string err;
  char buf[256];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) err.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFSIGNALED(status));
  CHECK(err.find("skein: internal invariant violated: a waiter is in one list at a time") != std::string::npos);
#endif
}

// --- Scope cancellers: the registration every cancellable co_await makes ---

namespace {
struct CountingCanceller : skein::detail::Canceller {
  std::atomic<int> runs{0};
  std::function<void()> body;
  CountingCanceller() {
    fn = [](skein::detail::Canceller* c) noexcept {
      auto* self = static_cast<CountingCanceller*>(c);
      self->runs.fetch_add(1);
      if (self->body) self->body();  // last: it may delete the canceller
    };
  }
};
}  // namespace

TEST_CASE("Scope cancellers: each runs once on request_stop; a removed one never runs; none is added after") {
  skein::detail::Scope scope;
  CountingCanceller a, b, c;
  REQUIRE(scope.add_canceller(&a));
  REQUIRE(scope.add_canceller(&b));
  REQUIRE(scope.add_canceller(&c));
  scope.remove_canceller(&b);
  scope.request_stop();
  CHECK(a.runs == 1);
  CHECK(b.runs == 0);
  CHECK(c.runs == 1);
  scope.request_stop();  // idempotent: nothing is left to run
  CHECK(a.runs == 1);
  scope.remove_canceller(&a);  // after its run, on the thread that ran it: returns at once
  scope.remove_canceller(&c);
  CountingCanceller late;
  CHECK_FALSE(scope.add_canceller(&late));
  CHECK(late.runs == 0);
}

TEST_CASE(
    "Scope cancellers: removing from inside the canceller's own run (a coroutine resumed inline) returns at once") {
  skein::detail::Scope scope;
  int ran = 0;
  auto* c = new CountingCanceller;
  c->body = [&] {
    ran = c->runs.load();
    scope.remove_canceller(c);  // the resumed coroutine's await_resume, up this stack ...
    delete c;                   // ... and its frame goes: request_stop must not touch it again (ASan)
  };
  REQUIRE(scope.add_canceller(c));
  scope.request_stop();
  CHECK(ran == 1);
}

TEST_CASE("Scope cancellers: a removal on another thread waits until the running canceller has returned") {
  skein::detail::Scope scope;
  CountingCanceller c;
  std::atomic<bool> entered{false}, release{false}, returned{false};
  c.body = [&] {
    entered = true;
    while (!release.load()) std::this_thread::yield();
  };
  REQUIRE(scope.add_canceller(&c));
  std::thread stopper([&] { scope.request_stop(); });
  while (!entered.load()) std::this_thread::yield();
  std::thread remover([&] {
    scope.remove_canceller(&c);
    returned = true;
  });
  // The remover cannot return while the canceller runs: give it time to try.
  for (int i = 0; i < 1000; ++i) std::this_thread::yield();
  CHECK_FALSE(returned.load());
  release = true;
  remover.join();
  stopper.join();
  CHECK(returned.load());
  CHECK(c.runs == 1);
}

TEST_CASE("FrameCache: a class's blocks fit its frames with less than one granule to spare") {
  using skein::detail::FrameCache;
  for (std::size_t n = 1; n <= 1024; ++n) {
    const std::size_t c = FrameCache::class_of(n);
    REQUIRE(c < FrameCache::kClasses);
    const std::size_t size = FrameCache::size_of(c);
    CHECK(size >= n);
    CHECK((size - n < FrameCache::kGranule || size == FrameCache::kSmallest));
  }
}

#if SKEIN_FRAME_CACHE && defined(__GLIBC__)
TEST_CASE("FrameCache: a block malloc'd for a class is exactly one of malloc's chunks") {
  // The classes are malloc's usable sizes: a task state of 56 bytes and a
  // frame of 104 cost 64 and 112 bytes of heap, not 80 and 144.
  using skein::detail::FrameCache;
  for (std::size_t n : {8, 24, 40, 56, 57, 104, 200, 1000}) {
    const std::size_t c = FrameCache::class_of(n);
    void* p = ::operator new(FrameCache::size_of(c));  // what a cache miss allocates
    CHECK(malloc_usable_size(p) == FrameCache::size_of(c));
    ::operator delete(p);
  }
}
#endif

#if SKEIN_FRAME_CACHE
TEST_CASE("FrameCache: frames freed on one thread reach, in batches, a thread that allocates") {
  // A task started on one worker and ended on another: without the depot,
  // every such frame would be a malloc on one side and a free on the other.
  using skein::detail::FrameCache;
  constexpr std::size_t kSize = 1000;  // a large class: no task frame of the suite uses it
  constexpr int kN = 2000;
  std::vector<void*> first(kN), second(kN);
  std::thread producer([&] {
    for (auto& p : first) p = FrameCache::allocate(kSize);
  });
  producer.join();
  std::thread consumer([&] {
    for (void* p : first) FrameCache::deallocate(p, kSize);  // more than one thread's cache holds
  });
  consumer.join();
  std::thread again([&] {
    for (auto& p : second) p = FrameCache::allocate(kSize);
  });
  again.join();
  std::vector<void*> a = first, b = second;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  CHECK(std::adjacent_find(b.begin(), b.end()) == b.end());  // no block handed out twice
  std::vector<void*> common;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(common));
  // The consumer kept kFramesPerClass; the rest went to the depot in full
  // batches, and the new thread took them all before calling operator new.
  const std::size_t via_depot = (kN - FrameCache::kMaxPerClass) / FrameCache::kBatch * FrameCache::kBatch;
  CHECK(common.size() >= via_depot);
  for (void* p : second) FrameCache::deallocate(p, kSize);
}
#endif

TEST_CASE("Ring: FIFO through growth, wrap-around and shrinking; every item destroyed once") {
  static int live = 0;
  struct Counted {
    explicit Counted(int x) noexcept : v(x) { ++live; }
    Counted(Counted&& o) noexcept : v(o.v) { ++live; }
    ~Counted() { --live; }
    int v;
  };
  {
    skein::detail::Ring<Counted> r;
    int next_in = 0, next_out = 0;
    // Interleave pushes and pops so the head wraps while the ring grows to
    // 4096 slots, then drain most of it (it shrinks back) and keep going.
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 3000; ++i) {
        r.push_back(Counted(next_in++));
        if (i % 3 == 0) {
          CHECK(r.front().v == next_out++);
          r.pop_front();
        }
      }
      while (r.size() > 10) {
        CHECK(r.front().v == next_out++);
        r.pop_front();
      }
      CHECK(static_cast<int>(r.size()) == live);
    }
    CHECK(next_in - next_out == 10);
  }
  CHECK(live == 0);  // the ring's destructor destroyed the rest
}
