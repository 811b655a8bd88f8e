// The plain-C++ event loop a user writes (std::mutex + std::condition_variable
// + std::deque<std::function<void()>>), peer of the event-loop benchmarks
// (bench/loop_common.hpp). Usage: std_loop WORKLOAD   (post1 | post4 | latency)

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

#include "loop_common.hpp"

namespace {

class StdLoop {
public:
  template <class F>
  void post(F f) {
    {
      std::lock_guard lk(m_);
      q_.emplace_back(std::move(f));
    }
    cv_.notify_one();
  }
  void run() {
    for (;;) {
      std::function<void()> f;
      {
        std::unique_lock lk(m_);
        cv_.wait(lk, [this] { return stopped_ || !q_.empty(); });
        if (stopped_) return;
        f = std::move(q_.front());
        q_.pop_front();
      }
      f();
    }
  }
  void stop() {
    std::lock_guard lk(m_);
    stopped_ = true;
  }

private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> q_;
  bool stopped_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return bench::usage(argv[0], bench::loop::kWorkloads);
  bench::Report r{argv[1], "std"};
  r.version = "libstdc++";
#if defined(_GLIBCXX_RELEASE)
#define STD_STR2(x) #x
#define STD_STR(x) STD_STR2(x)
  r.version = "libstdc++-" STD_STR(_GLIBCXX_RELEASE);
#endif
  r.base_mb = bench::current_rss_mb();
  StdLoop loop;
  if (!bench::loop::run_workload(argv[1], loop, r)) return bench::usage(argv[0], bench::loop::kWorkloads);
  return bench::finish(r);
}
