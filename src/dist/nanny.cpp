// The nanny thread: memory thresholds and heartbeats.
#include "nanny.hpp"

#include <malloc.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "../array/large_memory.hpp"
#include "weft/config.hpp"

namespace weft::dist {

void write_heartbeat(BatchWriter& w, const WorkerMetrics& m) {
  w.put(m.memory);
  w.put(m.peak_memory);
  w.put(m.memory_limit);
  w.put(m.managed_bytes);
  w.put(m.spilled_bytes);
  w.put(m.spilled_bytes_total);
  w.put(m.spilled_count);
  w.put(m.executing);
  w.put(m.ready);
  w.put(m.in_flight);
  w.put<std::uint8_t>(m.paused ? 1 : 0);
}

WorkerMetrics read_heartbeat(BatchReader& in) {
  WorkerMetrics m;
  m.memory = in.get<std::uint64_t>();
  m.peak_memory = in.get<std::uint64_t>();
  m.memory_limit = in.get<std::uint64_t>();
  m.managed_bytes = in.get<std::uint64_t>();
  m.spilled_bytes = in.get<std::uint64_t>();
  m.spilled_bytes_total = in.get<std::uint64_t>();
  m.spilled_count = in.get<std::uint32_t>();
  m.executing = in.get<std::uint32_t>();
  m.ready = in.get<std::uint32_t>();
  m.in_flight = in.get<std::uint32_t>();
  m.paused = in.get<std::uint8_t>() != 0;
  return m;
}

void write_terminating(BatchWriter& w, const MemoryExceeded& e) {
  w.put(e.rss);
  w.put(e.limit);
  w.string(e.host);
  w.put(static_cast<std::uint32_t>(e.largest.size()));
  for (const auto& [task, nbytes] : e.largest) {
    w.put(task);
    w.put(nbytes);
  }
}

MemoryExceeded read_terminating(BatchReader& in) {
  MemoryExceeded e;
  e.rss = in.get<std::uint64_t>();
  e.limit = in.get<std::uint64_t>();
  e.host = in.string();
  auto n = in.get<std::uint32_t>();
  for (std::uint32_t i = 0; i < n; ++i) {
    auto task = in.get<TaskId>();
    e.largest.emplace_back(task, in.get<std::uint64_t>());
  }
  return e;
}

std::string describe(const MemoryExceeded& e, int rank, const std::function<std::string(TaskId)>& key_of) {
  std::string text = "worker rank " + std::to_string(rank) + " (" + e.host + ") ran out of memory: RSS " +
                     format_bytes(e.rss) + " of its " + format_bytes(e.limit) + " limit (--memory-limit)";
  if (e.largest.empty()) return text + "; it holds no results";
  text += "; its largest results: ";
  for (std::size_t i = 0; i < e.largest.size(); ++i)
    text += (i ? ", '" : "'") + key_of(e.largest[i].first) + "' (" + format_bytes(e.largest[i].second) + ")";
  return text;
}

std::string format_bytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  auto value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.2f %s", value, kUnits[unit]);
  return text;
}

std::uint64_t resident_bytes() {
  // statm: size resident shared text lib data dt, in pages.
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

std::uint64_t peak_resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (!line.starts_with("VmHWM:")) continue;
    return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;  // "VmHWM:   1234 kB"
  }
  return 0;
}

std::optional<std::string> shared_file_system(const std::string& path) {
  struct statfs fs {};
  if (statfs(path.c_str(), &fs) != 0) return std::nullopt;
  // The kernel's magic numbers (linux/magic.h; Lustre, GPFS and BeeGFS from
  // their own sources).
  switch (static_cast<unsigned long>(fs.f_type)) {
    case 0x6969UL: return "NFS";
    case 0x0BD00BD0UL: return "Lustre";
    case 0x47504653UL: return "GPFS";
    case 0x19830326UL: return "BeeGFS";
    case 0xFF534D42UL: return "CIFS";
    case 0x517BUL:
    case 0xFE534D42UL: return "SMB";
    default: return std::nullopt;
  }
}

NannyOptions NannyOptions::from_config(std::uint64_t memory_limit) {
  NannyOptions o;
  o.memory_limit = memory_limit;
  o.thresholds.target = config::get<double>("distributed.worker.memory.target");
  o.thresholds.spill = config::get<double>("distributed.worker.memory.spill");
  o.thresholds.pause = config::get<double>("distributed.worker.memory.pause");
  o.thresholds.terminate = config::get<double>("distributed.worker.memory.terminate");
  o.monitor_interval = config::get_seconds("distributed.worker.memory.monitor-interval");
  o.heartbeat_interval = config::get_seconds("distributed.worker.heartbeat-interval");
  o.worker_ttl = config::get_seconds("distributed.scheduler.worker-ttl");
  return o;
}

Nanny::Nanny(NannyHost& host, const NannyOptions& options) : host_(host), options_(options) {
  thread_ = std::thread([this] { loop(); });
}

Nanny::~Nanny() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Nanny::loop() {
  auto seconds = [](double s) { return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)); };
  const bool watching = options_.memory_limit != 0;
  const auto monitor_every = seconds(std::max(options_.monitor_interval, 1e-3));
  const auto heartbeat_every = seconds(std::max(options_.heartbeat_interval, 1e-3));
  auto next_monitor = Clock::now();
  auto next_heartbeat = next_monitor;
  std::unique_lock lock(mutex_);
  while (!stop_) {
    wake_.wait_until(lock, watching ? std::min(next_monitor, next_heartbeat) : next_heartbeat,
                     [this] { return stop_; });
    if (stop_) return;
    lock.unlock();
    const auto now = Clock::now();
    std::uint64_t rss = resident_bytes();
    if (watching && now >= next_monitor) {
      rss = watch_memory(rss);
      next_monitor = now + monitor_every;
    }
    if (now >= next_heartbeat) {
      if (!host_.hung(options_.worker_ttl)) {
        WorkerMetrics m = host_.metrics();
        m.memory = rss;
        m.peak_memory = std::max(peak_resident_bytes(), rss);
        m.memory_limit = options_.memory_limit;
        m.paused = paused_ || terminated_;
        host_.send_heartbeat(m);
      }
      next_heartbeat = now + heartbeat_every;
    }
    lock.lock();
  }
}

std::uint64_t Nanny::watch_memory(std::uint64_t rss) {
  if (terminated_) return rss;
  const auto limit = static_cast<double>(options_.memory_limit);
  const MemoryThresholds& t = options_.thresholds;
  auto above = [&](double fraction) { return fraction > 0 && static_cast<double>(rss) > fraction * limit; };
  if (above(t.target) || above(t.spill) || above(t.pause) || above(t.terminate)) {
    // Freed memory that allocators keep for reuse is not the worker's data:
    // give it back before measuring against the limits.
    array::detail::release_kept_large_memory();
    malloc_trim(0);
    rss = resident_bytes();
  }
  if (above(t.terminate)) {
    terminated_ = true;
    host_.terminate(rss, options_.memory_limit);
    return rss;
  }
  if (above(t.spill)) {
    // Spill until RSS is below target (or the spill threshold when target is
    // off), giving freed memory back after each spill.
    const double goal = t.target > 0 ? t.target : t.spill;
    while (static_cast<double>(rss) > goal * limit) {
      const bool spilled = host_.spill_one();
      array::detail::release_kept_large_memory();
      malloc_trim(0);
      rss = resident_bytes();
      if (!spilled) break;
    }
  }
  const bool pause = above(t.pause);
  if (pause != paused_) {
    paused_ = pause;
    host_.set_paused(pause);
  }
  return rss;
}

}  // namespace weft::dist
