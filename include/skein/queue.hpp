#pragma once
/// Queue<T>: Go's channel as a FIFO queue — bounded, unbounded or unbuffered
/// (a rendezvous), closable, for blocking threads and coroutines alike,
/// cancellable, with direct hand-off from a putter to a waiting getter, and
/// usable in skein::select.

#include "detail/config.hpp"  // first: the C++20 check

#include <chrono>
#include <cstddef>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include "detail/ring.hpp"
#include "detail/select_core.hpp"
#include "detail/spin.hpp"
#include "detail/wait_operation.hpp"
#include "detail/waiter.hpp"
#include "errors.hpp"

namespace skein {

/// Tag for an unbuffered Queue: `Queue<T> q(skein::unbuffered);`
struct unbuffered_t {
  explicit unbuffered_t() = default;
};
inline constexpr unbuffered_t unbuffered{};

template <class T>
class Queue;
template <class T>
class GetCase;
template <class T>
class PutCase;
namespace detail {
template <class T>
class QueueCase;
}  // namespace detail

/// Semantics (docs/api/queue.md): FIFO; `close()` is idempotent; items queued before
/// close are still delivered; a put blocked at close, and any later put, throws
/// Closed and its item never appears; a get blocked at close drains what is
/// left and then returns an empty optional; a put or get that times out or is
/// cancelled neither loses nor duplicates an item (a failed put leaves the
/// caller's item untouched).
template <class T>
class Queue {
  static_assert(std::is_nothrow_move_constructible_v<T>, "skein::Queue<T> needs a nothrow move-constructible T");

  // A waiter's payload (Waiter::data).
  enum Result { kPending, kDone, kClosed };
  struct PutSlot {
    T* item;  // the putter's item, moved from only when taken
    Result result;
  };
  struct GetSlot {
    std::optional<T>* out;
    Result result;
  };

public:
  /// `maxsize` = 0: unbounded.
  explicit Queue(std::size_t maxsize = 0) : cap_(maxsize) {}
  /// Unbuffered (Go's `make(chan T)`): a put completes only when a getter
  /// takes its item; try_put succeeds only if a getter is waiting, try_get
  /// only if a putter is.
  explicit Queue(unbuffered_t) : cap_(0), rendezvous_(true) {}
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  // --- put --------------------------------------------------------------------
  /// Blocks while full. Throws Closed if the queue is (or gets) closed.
  void put(const T& v) {
    T copy(v);  // a throwing copy leaves the queue untouched
    put(std::move(copy));
  }
  void put(T&& v) {  // by reference: a put that fails (Closed, Cancelled) leaves `v` untouched
    if (!put_wait(v, nullptr)) detail::throw_cancelled();
  }

  /// Puts without blocking; false if full (the item is untouched). Throws Closed if closed.
  bool try_put(const T& v) {
    T copy(v);  // a throwing copy leaves the queue untouched
    return try_put_impl(copy);
  }
  bool try_put(T&& v) { return try_put_impl(v); }

  /// Blocks at most `d`; false on timeout (the item is untouched).
  template <class Rep, class Period>
  bool put_for(T&& v, std::chrono::duration<Rep, Period> d) {
    auto deadline = detail::deadline_after(d);
    return put_wait(v, &deadline);
  }
  template <class Rep, class Period>
  bool put_for(const T& v, std::chrono::duration<Rep, Period> d) {
    T copy(v);
    return put_for(std::move(copy), d);
  }

  // --- get --------------------------------------------------------------------
  /// Blocks while empty; an empty optional once closed and drained.
  std::optional<T> get() { return get_wait(nullptr).value; }
  /// An item if one is available now; else empty (also when closed and drained).
  std::optional<T> try_get() {
    std::optional<T> out;
    detail::Waiter* woken = nullptr;
    {
      std::lock_guard lk(lk_);
      woken = take_locked(out);
    }
    if (woken) woken->notify();
    return out;
  }
  /// Blocks at most `d`; empty on timeout or once closed and drained.
  template <class Rep, class Period>
  std::optional<T> get_for(std::chrono::duration<Rep, Period> d) {
    auto deadline = detail::deadline_after(d);
    return get_wait(&deadline).value;
  }

  // --- state ------------------------------------------------------------------
  [[nodiscard]] std::size_t size() const {
    std::lock_guard lk(lk_);
    return buf_.size();
  }
  /// The bound given at construction (0 = unbounded, or unbuffered).
  [[nodiscard]] std::size_t capacity() const noexcept { return cap_; }
  /// True for a Queue made with skein::unbuffered.
  [[nodiscard]] bool is_unbuffered() const noexcept { return rendezvous_; }
  [[nodiscard]] bool closed() const {
    std::lock_guard lk(lk_);
    return closed_;
  }
  /// Stops accepting items; wakes every blocked put (Closed) and get (empty). Idempotent.
  void close() {
    detail::Waiter* putters;
    detail::Waiter* getters;
    {
      std::lock_guard lk(lk_);
      if (closed_) return;
      closed_ = true;
      putters = putters_.take_all();
      getters = getters_.take_all();
      for (auto* w = putters; w; w = w->next) slot_of<PutSlot>(w)->result = kClosed;
      for (auto* w = getters; w; w = w->next) slot_of<GetSlot>(w)->result = kClosed;
    }
    detail::WaiterList::notify_chain(putters);
    detail::WaiterList::notify_chain(getters);
  }

  // --- coroutines -----------------------------------------------------------------
  class [[nodiscard]] PutOperation : public detail::WaitOperation<PutOperation> {
  public:
    PutOperation(Queue& q, T v) noexcept : q_(q), item_(std::move(v)) { this->waiter().data = &slot_; }
    bool try_now() {
      done_ = q_.try_put_impl(item_);  // throws Closed
      return done_;
    }
    bool enqueue(detail::Waiter& w) { return q_.enqueue_putter(w, slot_, closed_now_); }  // bad_alloc: not queued
    bool withdraw(detail::Waiter& w) noexcept { return q_.withdraw(q_.putters_, w); }
    void result() {
      if (closed_now_ || slot_.result == kClosed) throw Closed("put on a closed Queue");
    }
    [[nodiscard]] detail::WaitReason trace_reason() const noexcept { return {detail::type_name<Queue>(), &q_}; }

  private:
    Queue& q_;
    T item_;
    PutSlot slot_{&item_, kPending};
    bool done_ = false, closed_now_ = false;
  };
  /// `co_await q.async_put(v);` Suspends while full; throws Closed or Cancelled.
  PutOperation async_put(T v) noexcept { return PutOperation(*this, std::move(v)); }

  class [[nodiscard]] GetOperation : public detail::WaitOperation<GetOperation> {
  public:
    explicit GetOperation(Queue& q) noexcept : q_(q) { this->waiter().data = &slot_; }
    bool try_now() { return q_.try_take(out_); }
    bool enqueue(detail::Waiter& w) noexcept { return q_.enqueue_getter(w, slot_); }
    bool withdraw(detail::Waiter& w) noexcept { return q_.withdraw(q_.getters_, w); }
    std::optional<T> result() noexcept { return std::move(out_); }
    [[nodiscard]] detail::WaitReason trace_reason() const noexcept { return {detail::type_name<Queue>(), &q_}; }

  private:
    Queue& q_;
    std::optional<T> out_;
    GetSlot slot_{&out_, kPending};
  };
  /// `auto v = co_await q.async_get();` Suspends while empty; empty optional
  /// once closed and drained; throws Cancelled.
  GetOperation async_get() noexcept { return GetOperation(*this); }

  // --- range-for ----------------------------------------------------------------
  class iterator {
  public:
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using iterator_category = std::input_iterator_tag;
    iterator() = default;
    explicit iterator(Queue* q) : q_(q) { ++*this; }
    T& operator*() noexcept { return *cur_; }
    T* operator->() noexcept { return &*cur_; }
    iterator& operator++() {
      cur_ = q_->get();
      if (!cur_) q_ = nullptr;
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.q_ == b.q_; }

  private:
    Queue* q_ = nullptr;
    std::optional<T> cur_;
  };
  /// `for (auto& v : q)` takes items until the queue is closed and drained.
  iterator begin() { return iterator(this); }
  iterator end() noexcept { return iterator(); }

private:
  friend class GetCase<T>;
  friend class PutCase<T>;
  friend class detail::QueueCase<T>;

  template <class S>
  static S* slot_of(detail::Waiter* w) noexcept {
    return static_cast<S*>(w->data);
  }

  // lk_ held. Takes the front item (refilling from a blocked putter) into `out`;
  // returns a putter to notify. Unbuffered, takes a blocked putter's item.
  // A putter that is a select's case is claimed first (pop_front_claimed).
  detail::Waiter* take_locked(std::optional<T>& out) noexcept {
    if (buf_.empty()) {
      if (!rendezvous_) return nullptr;
      detail::Waiter* p = putters_.pop_front_claimed();
      if (!p) return nullptr;
      auto* s = slot_of<PutSlot>(p);
      out.emplace(std::move(*s->item));
      s->result = kDone;
      return p;
    }
    out.emplace(std::move(buf_.front()));
    detail::Waiter* p = putters_.pop_front_claimed();
    if (!p) {
      buf_.pop_front();
      return nullptr;
    }
    auto* s = slot_of<PutSlot>(p);
    buf_.pop_front();
    buf_.push_back(std::move(*s->item));  // into the place just freed: cannot allocate
    s->result = kDone;
    return p;
  }
  bool try_take(std::optional<T>& out) {
    detail::Waiter* woken;
    bool closed_empty;
    {
      std::lock_guard lk(lk_);
      woken = take_locked(out);
      closed_empty = !out && closed_;
    }
    if (woken) woken->notify();
    return out.has_value() || closed_empty;  // closed and drained: done, empty
  }

  // lk_ held. Places `v` (moved from only on success): to a waiting getter,
  // or into the buffer if there is room. Returns the getter to notify via `woken`.
  bool place_locked(T& v, detail::Waiter*& woken) {
    if (closed_) throw Closed("put on a closed Queue");
    if (detail::Waiter* g = getters_.pop_front_claimed()) {  // a getter waits: the buffer is empty
      auto* s = slot_of<GetSlot>(g);
      s->out->emplace(std::move(v));
      s->result = kDone;
      woken = g;
      return true;
    }
    if (rendezvous_) return false;  // only a waiting getter takes an item
    if (cap_ == 0 || buf_.size() < cap_) {
      buf_.push_back(std::move(v));
      return true;
    }
    return false;
  }
  bool try_put_impl(T& v) {
    detail::Waiter* woken = nullptr;
    bool ok;
    {
      std::lock_guard lk(lk_);
      ok = place_locked(v, woken);
    }
    if (woken) woken->notify();  // outside the lock: the getter may run at once
    return ok;
  }
  // Throws std::bad_alloc if the buffer cannot grow (then nothing changed).
  bool enqueue_putter(detail::Waiter& w, PutSlot& slot, bool& closed_now) {
    detail::Waiter* woken = nullptr;
    bool linked = false;
    {
      std::lock_guard lk(lk_);
      if (closed_) {
        closed_now = true;
      } else if (!place_locked(*slot.item, woken)) {
        putters_.push_back(&w);
        linked = true;
      }
    }
    if (woken) woken->notify();
    return linked;
  }
  bool enqueue_getter(detail::Waiter& w, GetSlot& slot) noexcept {
    detail::Waiter* woken = nullptr;
    bool linked = false;
    {
      std::lock_guard lk(lk_);
      woken = take_locked(*slot.out);
      if (!slot.out->has_value()) {
        if (closed_) {
          slot.result = kClosed;
        } else {
          getters_.push_back(&w);
          linked = true;
        }
      }
    }
    if (woken) woken->notify();
    return linked;
  }
  bool withdraw(detail::WaiterList& list, detail::Waiter& w) noexcept {
    std::lock_guard lk(lk_);
    return list.remove(&w);
  }

  /// Blocking put; false on timeout; throws Closed / Cancelled.
  bool put_wait(T& v, const detail::Clock::time_point* deadline) {
    detail::ThreadWaiter w;
    PutSlot slot{&v, kPending};
    w.data = &slot;
    w.kind = "Queue::put";
    w.object = this;
    bool closed_now = false;
    auto s = detail::enqueue_and_block(
        w, [&](detail::Waiter& x) { return enqueue_putter(x, slot, closed_now); },
        [&](detail::Waiter& x) { return withdraw(putters_, x); }, deadline);
    if (closed_now || (s == detail::WaitStatus::ready && slot.result == kClosed)) throw Closed("put on a closed Queue");
    return detail::completed(s);
  }
  struct GetResult {
    std::optional<T> value;
  };
  GetResult get_wait(const detail::Clock::time_point* deadline) {
    GetResult r;
    detail::ThreadWaiter w;
    GetSlot slot{&r.value, kPending};
    w.data = &slot;
    w.kind = "Queue::get";
    w.object = this;
    auto s = detail::enqueue_and_block(
        w, [&](detail::Waiter& x) { return enqueue_getter(x, slot); },
        [&](detail::Waiter& x) { return withdraw(getters_, x); }, deadline);
    detail::completed(s);  // Cancelled throws; a timeout leaves r.value empty
    return r;
  }

  const std::size_t cap_;
  const bool rendezvous_ = false;
  mutable detail::SpinLock lk_;
  detail::Ring<T> buf_;
  detail::WaiterList getters_, putters_;
  bool closed_ = false;
};

namespace detail {
/// What a Queue's two select cases share: the queue, and its lock for the
/// select engine.
template <class T>
class QueueCase : public SelectCase {
public:
  const void* lock_key() const noexcept override { return &q_->lk_; }
  void lock() noexcept override { q_->lk_.lock(); }
  void unlock() noexcept override { q_->lk_.unlock(); }

protected:
  explicit QueueCase(Queue<T>* q) noexcept : q_(q) {}
  QueueCase(const QueueCase&) = default;
  QueueCase& operator=(const QueueCase&) = delete;
  ~QueueCase() override = default;
  Queue<T>* q_;
};
}  // namespace detail

/// A select case that gets from a Queue (skein::case_get): fires with the
/// item, or with an empty optional once the queue is closed and drained.
template <class T>
class GetCase final : public detail::QueueCase<T> {
  using detail::QueueCase<T>::q_;

public:
  explicit GetCase(Queue<T>& q) noexcept : detail::QueueCase<T>(&q) {}
  GetCase(GetCase&& o) noexcept : detail::QueueCase<T>(o), out_(std::move(o.out_)) {}
  GetCase& operator=(GetCase&&) = delete;
  ~GetCase() = default;

  /// The case's result, once it won.
  std::optional<T>& result() noexcept { return out_; }

  bool poll(detail::Waiter*& woken) override {
    woken = q_->take_locked(out_);
    if (out_) return true;
    if (!q_->closed_) return false;
    slot_.result = Queue<T>::kClosed;  // closed and drained: fires empty-handed
    return true;
  }
  bool link(detail::ClaimableWaiter& w) override {
    w.data = &slot_;
    q_->getters_.push_back(&w);
    return true;
  }
  bool unlink(detail::ClaimableWaiter& w) noexcept override { return q_->withdraw(q_->getters_, w); }

private:
  std::optional<T> out_;
  typename Queue<T>::GetSlot slot_{&out_, Queue<T>::kPending};
};

/// A select case that puts into a Queue (skein::case_put): fires once the
/// item is queued or taken; a queue closed before that makes select throw
/// Closed (as a send on a closed channel panics in Go). A losing case keeps
/// its item (result()).
template <class T>
class PutCase final : public detail::QueueCase<T> {
  using detail::QueueCase<T>::q_;

public:
  PutCase(Queue<T>& q, T v) noexcept : detail::QueueCase<T>(&q), item_(std::move(v)) {}
  PutCase(PutCase&& o) noexcept : detail::QueueCase<T>(o), item_(std::move(o.item_)) {}
  PutCase& operator=(PutCase&&) = delete;
  ~PutCase() = default;

  /// The item: moved from if the case won, intact if it lost.
  T& item() noexcept { return item_; }

  bool poll(detail::Waiter*& woken) override { return q_->place_locked(item_, woken); }  // throws Closed
  bool link(detail::ClaimableWaiter& w) override {
    w.data = &slot_;
    q_->putters_.push_back(&w);
    return true;
  }
  bool unlink(detail::ClaimableWaiter& w) noexcept override { return q_->withdraw(q_->putters_, w); }
  void finish() override {
    if (slot_.result == Queue<T>::kClosed) throw Closed("put on a closed Queue");
  }

private:
  T item_;
  typename Queue<T>::PutSlot slot_{&item_, Queue<T>::kPending};
};

}  // namespace skein
