#include "Parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "TemperKernels.h"

namespace temper::kernels {
namespace {

class Pool {
 public:
  Pool() {
    // TEMPER_KERNEL_THREADS overrides the core count (for measuring scaling, or sharing a machine).
    unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    if (const char* requested = std::getenv("TEMPER_KERNEL_THREADS")) {
      cores = std::max(1, std::atoi(requested));
    }
    for (unsigned i = 1; i < cores; i++) workers_.emplace_back([this, i] { loop(i); });
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      stopping_flag_.store(true);
    }
    wake_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs job(part) for part in [0, parts) with the caller taking part 0. One job at a time: kernels
  // run on MLX's single CPU stream thread, and a nested or concurrent call runs serially instead.
  void run(int parts, const std::function<void(int)>& job) {
    std::unique_lock<std::mutex> busy(run_mutex_, std::try_to_lock);
    if (!busy.owns_lock() || parts <= 1) {
      for (int p = 0; p < parts; p++) job(p);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &job;
      parts_ = parts;
      pending_ = parts - 1;
      generation_++;
    }
    published_.store(generation_, std::memory_order_release);
    wake_.notify_all();
    job(0);
    spin_until([this] { return finished_.load(std::memory_order_acquire) == published_.load(std::memory_order_relaxed); });
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  /// Waits up to kSpin for `ready` before the caller blocks: kernels come in quick succession, and
  /// waking a sleeping thread costs tens of microseconds on a virtual machine.
  template <class Ready>
  static void spin_until(Ready ready) {
    auto deadline = std::chrono::steady_clock::now() + kSpin;
    while (!ready()) {
      if (std::chrono::steady_clock::now() > deadline) return;
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    }
  }

  void loop(int index) {
    size_t seen = 0;
    while (true) {
      const std::function<void(int)>* job;
      spin_until([&] { return published_.load(std::memory_order_acquire) != seen || stopping_flag_.load(); });
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
        if (index >= parts_) continue;
        job = job_;
      }
      (*job)(index);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        pending_--;
        if (pending_ == 0) finished_.store(seen, std::memory_order_release);
      }
      done_.notify_one();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex run_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(int)>* job_ = nullptr;
  int parts_ = 0;
  int pending_ = 0;
  size_t generation_ = 0;
  bool stopping_ = false;
  static constexpr auto kSpin = std::chrono::microseconds(50);
  std::atomic<size_t> published_{0}, finished_{0};
  std::atomic<bool> stopping_flag_{false};
};

Pool& pool() {
  static Pool instance;
  return instance;
}

}  // namespace

int thread_count() { return pool().size(); }

void parallel_for(size_t count, size_t grain, const std::function<void(size_t, size_t)>& body, size_t align) {
  if (count == 0) return;
  size_t threads = std::min<size_t>(pool().size(), std::max<size_t>(1, count / std::max<size_t>(grain, 1)));
  if (threads <= 1) {
    body(0, count);
    return;
  }
  size_t chunk = (count + threads - 1) / threads;
  chunk = (chunk + align - 1) / align * align;
  pool().run(static_cast<int>(threads), [&](int part) {
    size_t begin = std::min(count, part * chunk);
    size_t end = std::min(count, begin + chunk);
    if (begin < end) body(begin, end);
  });
}

}  // namespace temper::kernels
