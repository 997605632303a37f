// Native kernels of the golden model: exact integer convolutions and matrix products of 16-bit
// operands, fused with the requantization that follows them (round half up, saturate, count),
// the ReLU bit, max-pool ranking and, backwards, gradient routing. Compiled by
// xaihls/golden/native.py with the system C++ compiler on first use and called through ctypes.
//
// What every function guarantees: the same integers as the golden model's Python path
// (xaihls/golden/model.py on xaihls/golden/kernels.py and xaihls/numerics.py), for every
// operand of at most 16 bits (the callers check widths; all values passed in are int16).
//
// Five product kernels; the fastest one the CPU runs is chosen at run time (native.py): AMX,
// AVX-512 VNNI, AVX-VNNI, AVX2, portable. All but the portable one are compiled with per-function
// targets and called only after a run-time check of the CPU (cpuid, and for AMX the OS's grant
// of the tile state), so a build without -march=native has them all.
//
// AMX (x86 with AMX-INT8, the OS granting the tile state): each 16-bit operand is written as
//   two digits, v = 256*h + l with h = v >> 8 in [-128, 127] (signed) and l = v & 255 in
//   [0, 255] (unsigned); no offset, so a zero operand (padding) has zero digits. For a sum
//   over K terms of x*w:
//       sum x*w = 2^16 sum xh*wh + 2^8 (sum xl*wh + sum xh*wl) + sum xl*wl
//   AMX has the four signednesses (TDPBSSD, TDPBSUD, TDPBUSD, TDPBUUD), so each digit product
//   runs as it is. The three sums are int32 tiles. Their terms are at most, in magnitude,
//   128*128 = 16,384 (hh), 255*128 + 128*255 = 65,280 (the two cross products, one tile) and
//   255*255 = 65,025 (ll); a tile holds at most FLUSH_CHUNKS * 64 = 16,384 terms between two
//   flushes into int64, so |tile| <= 16,384 * 65,280 < 2^31: every int32 sum is exact (and the
//   instructions' intermediate sums, partial sums of the same terms, are bounded alike). The
//   recombination is in int64, where the true sum (at most K * 2^30 with K < 2^33) fits.
//   Convolutions read their A tiles straight from a zero-framed digit canvas of one image,
//   channels last: one tile row is one output position's window row (kw * C bytes, read as
//   64-byte chunks; with few channels the kernel rows are stacked into each pixel first, so
//   a window row is the whole window). Bytes of a chunk past the window row belong to other
//   pixels, or to the canvas's slack, and meet zero rows of the packed weights: they add 0,
//   whatever they hold (digits all the same, so every bound above still holds). Tile rows
//   past the last output position of a row are computed and dropped. The zero frame (the
//   convolution's padding) is written on every image.
//
// AVX-512 VNNI, AVX-VNNI and AVX2 (x86 without AMX): each 16-bit weight is written as two
//   digits when it is packed, w = 256*wh + wl with wh = w >> 8 in [-128, 127] and
//   wl = w & 255 in [0, 255], both held in int16 lanes; the activation x stays whole. For a
//   sum over K terms:
//       sum x*w = 2^8 sum x*wh + sum x*wl
//   Two int32 sums a row and column: VPDPWSSD (AVX-512 VNNI, 512 bits; AVX-VNNI, 256) adds a
//   pair of int16 products to an int32 lane; VPMADDWD (AVX2) forms the same pair sum, VPADDD
//   adds it. Terms are at most, in magnitude, 32,768 * 128 = 4,194,304 (x*wh) and
//   32,768 * 255 = 8,355,840 (x*wl); a sum holds at most FLUSH_PAIRS * 2 = 256 terms between
//   two flushes into int64, so
//   |sum| <= 256 * 8,355,840 = 2,139,095,040 < 2^31 - 1: every int32 sum is exact, and so is
//   every partial sum on the way (a pair's sum, an instruction's result: sums of fewer of the
//   same terms). The recombination is in int64. K odd: the last pair's second term reads the
//   canvas element after the window row (inside the canvas plane, which has a chunk of slack)
//   and meets a zero weight digit: it adds 0 whatever it holds. Canvases are the portable
//   kernel's (int16, channels last); rows of a block past its last output position are computed
//   from canvas elements inside the plane (which covers 16 rows a block, as for AMX) and dropped.
//
// Portable (any CPU, any compiler): int16 * int16 products are exact in int32 (|p| <= 2^30)
//   and summed in int64. Slow, simple, and the reference the other kernels are tested against.
//
// Requantization is numerics.round_shift then numerics.saturate, written as there:
//   shift > 0:  ((acc >> min(shift-1, 63)) + 1) >> 1     (= (acc + 2^(shift-1)) >> shift)
//   shift <= 0: clamp(acc, -2^(62-l), 2^(62-l)) << l, l = min(-shift, 62)
// then clamp to [qmin, qmax], counting the values that were outside.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <unistd.h>

#if defined(_OPENMP)
#include <omp.h>
#endif

// The SIMD kernels need x86-64 and a compiler that takes per-function targets with their
// intrinsics (GCC >= 9 and Clang >= 8 know AVX512-VNNI); AMX needs Linux as well (the tile state
// is granted per process by arch_prctl) and a newer compiler.
#if defined(__x86_64__) && !defined(XG_NO_SIMD) && \
    ((defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 9) || (defined(__clang__) && __clang_major__ >= 8))
#define XG_HAVE_SIMD 1
#else
#define XG_HAVE_SIMD 0
#endif
// AVX-VNNI (the VEX form, for CPUs without AVX-512) needs GCC >= 11 or Clang >= 12.
#if XG_HAVE_SIMD && ((defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11) || \
                     (defined(__clang__) && __clang_major__ >= 12))
#define XG_HAVE_AVX_VNNI 1
#else
#define XG_HAVE_AVX_VNNI 0
#endif
#if XG_HAVE_SIMD || defined(__AVX512F__)
#include <immintrin.h>  // also for the epilogues' AVX-512 forms in a -march=native build
#endif
#if XG_HAVE_SIMD && defined(__linux__) && !defined(XG_NO_AMX) && \
    ((defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11) || (defined(__clang__) && __clang_major__ >= 12))
#define XG_HAVE_AMX 1
#include <cpuid.h>
#include <sys/syscall.h>
#else
#define XG_HAVE_AMX 0
#endif

#define XG_API extern "C" __attribute__((visibility("default")))

namespace {

constexpr int XG_VERSION = 2;

enum Kernel : int { PORTABLE = 0, AMX = 1, AVX512_VNNI = 2, AVX2 = 3, AVX_VNNI = 4 };

bool pairs_layout(int kernel) {  // the SIMD kernels' weights
  return kernel == AVX512_VNNI || kernel == AVX_VNNI || kernel == AVX2;
}

constexpr int64_t FLUSH_CHUNKS = 256;  // 64-term chunks per int32 tile sum: 16,384 terms, see the top
constexpr int64_t FLUSH_PAIRS = 128;   // term pairs per int32 SIMD sum: 256 terms, see the top

// ------------------------------------------------------------------ numerics

struct Requant {  // numerics.round_shift by `shift`, then numerics.saturate to [qmin, qmax]
  Requant(int64_t shift, int64_t qmin, int64_t qmax)
      : right(shift > 0), s1(shift > 0 ? std::min<int64_t>(shift - 1, 63) : 0),
        left(shift > 0 ? 0 : std::min<int64_t>(-shift, 62)), bound(int64_t(1) << (62 - left)), qmin(qmin),
        qmax(qmax) {}
  // both forms computed and one kept: the loops around stay vectorizable
  int64_t round(int64_t acc) const {
    const int64_t down = ((acc >> s1) + 1) >> 1;
    const int64_t clamped = acc < -bound ? -bound : (acc > bound ? bound : acc);
    const int64_t up = static_cast<int64_t>(static_cast<uint64_t>(clamped) << left);
    return right ? down : up;
  }
  bool saturates(int64_t v) const { return (v < qmin) | (v > qmax); }
  int16_t clip(int64_t v) const { return static_cast<int16_t>(v < qmin ? qmin : (v > qmax ? qmax : v)); }
  bool right;
  int64_t s1, left, bound, qmin, qmax;
};

// ------------------------------------------------------------------ threads

// Tasks run in parallel on the threads PyTorch uses: built with OpenMP, this library shares
// the process's OpenMP runtime (PyTorch's wheels load theirs as libgomp.so.1, the name an
// OpenMP build links against), so its threads are the ones PyTorch keeps warm and no second
// set competes with them for the cores. Tasks are handed out one by one; results never depend
// on which thread runs what. When the calling thread, done with its share, waited longer for
// the others than it worked itself, and a millisecond or more, a thread was descheduled
// mid-task (its core taken by another process): calls run on the caller alone for a while,
// 10 ms, doubled on each such call in a row up to a second, then threads are tried again. Without OpenMP (a compiler
// without -fopenmp), a small pool of sleeping std::threads does the same.
class Backoff {
 public:
  using Clock = std::chrono::steady_clock;
  bool alone(Clock::time_point now) {
    std::lock_guard<std::mutex> lock(mu_);
    return now < until_;
  }
  void record(Clock::time_point start, Clock::time_point own_done, Clock::time_point end) {
    std::lock_guard<std::mutex> lock(mu_);
    // a wait of a millisecond or more: a scheduler time slice, not a late wake-up
    if (end - own_done > std::max<Clock::duration>(own_done - start, std::chrono::milliseconds(1))) {
      for_ = std::min<Clock::duration>(for_ * 2, std::chrono::seconds(1));
      until_ = end + for_;
    } else {
      for_ = std::chrono::milliseconds(5);  // the next slow call backs off 10 ms
    }
  }

 private:
  std::mutex mu_;
  Clock::time_point until_{};
  Clock::duration for_ = std::chrono::milliseconds(5);
};

Backoff& backoff() {
  static Backoff* b = new Backoff();  // never destroyed: threads may outlive static destructors
  return *b;
}

#if defined(_OPENMP)
void parallel_for(int64_t tasks, int threads, const std::function<void(int64_t)>& fn) {
  using Clock = Backoff::Clock;
  const Clock::time_point start = Clock::now();
  if (threads <= 1 || tasks <= 1 || backoff().alone(start)) {
    for (int64_t t = 0; t < tasks; ++t) fn(t);
    return;
  }
  std::atomic<int64_t> next{0};
  Clock::time_point own_done = start;
#pragma omp parallel num_threads(static_cast<int>(std::min<int64_t>(threads, tasks)))
  {
    for (int64_t t = next.fetch_add(1); t < tasks; t = next.fetch_add(1)) fn(t);
    if (omp_get_thread_num() == 0) own_done = Clock::now();
  }
  backoff().record(start, own_done, Clock::now());
}
#else
class Pool {  // workers that sleep between calls; the caller works too and waits only for started tasks
 public:
  using Clock = Backoff::Clock;

  void run(int64_t tasks, int threads, const std::function<void(int64_t)>& fn) {
    std::lock_guard<std::mutex> one_call(call_mu_);
    const Clock::time_point start = Clock::now();
    if (threads <= 1 || tasks <= 1 || backoff().alone(start)) {
      for (int64_t t = 0; t < tasks; ++t) fn(t);
      return;
    }
    const int helpers = static_cast<int>(std::min<int64_t>(threads, tasks)) - 1;
    std::unique_lock<std::mutex> lock(mu_);
    while (static_cast<int>(workers_.size()) < helpers) {
      const int id = static_cast<int>(workers_.size());
      workers_.emplace_back([this, id] { work(id); });
      workers_.back().detach();
    }
    fn_ = &fn;
    tasks_ = tasks;
    next_ = done_ = 0;
    wanted_ = helpers;
    ++generation_;
    lock.unlock();
    wake_.notify_all();
    lock.lock();
    drain(lock);
    const Clock::time_point drained = Clock::now();
    finished_.wait(lock, [this] { return done_ == tasks_; });
    tasks_ = 0;
    fn_ = nullptr;
    backoff().record(start, drained, Clock::now());
  }

 private:
  void drain(std::unique_lock<std::mutex>& lock) {  // called and returns with the lock held
    while (next_ < tasks_) {
      const int64_t t = next_++;
      const std::function<void(int64_t)>* fn = fn_;
      lock.unlock();
      (*fn)(t);
      lock.lock();
      if (++done_ == tasks_) finished_.notify_all();
    }
  }
  void work(int id) {
    int64_t seen = 0;
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      wake_.wait(lock, [&] { return generation_ != seen && id < wanted_; });
      seen = generation_;
      drain(lock);
    }
  }
  std::mutex call_mu_, mu_;
  std::condition_variable wake_, finished_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t tasks_ = 0, next_ = 0, done_ = 0, generation_ = 0;
  int wanted_ = 0;
};

Pool& pool() {
  // Never destroyed (joinable threads at exit would abort); made afresh in a forked child,
  // which has the memory of the parent's pool but none of its threads.
  static Pool* p = nullptr;
  static pid_t owner = 0;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  if (p == nullptr || owner != getpid()) {
    p = new Pool();
    owner = getpid();
  }
  return *p;
}

void parallel_for(int64_t tasks, int threads, const std::function<void(int64_t)>& fn) {
  pool().run(tasks, threads, fn);
}
#endif

// Per-thread scratch that keeps its memory between calls (large fresh allocations are
// page-faulted mappings every time).
enum Slot { CANVAS, STAGING, VALUES, RANK, BIAS, SUMS, OFFSETS, ROUTED, GRADIENT, SLOTS };

template <class T>
T* scratch(Slot slot, int64_t n) {
  thread_local std::vector<uint8_t> buffers[SLOTS];
  std::vector<uint8_t>& b = buffers[slot];
  const size_t bytes = static_cast<size_t>(n) * sizeof(T) + 64;
  if (b.size() < bytes) b.resize(bytes);
  return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(b.data()) + 63) & ~uintptr_t(63));
}

// ------------------------------------------------------------------ AMX detection

#if XG_HAVE_AMX
bool amx_usable_probe() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool tile = (d >> 24) & 1, int8 = (d >> 25) & 1;
  if (!tile || !int8) return false;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1)) return false;  // OSXSAVE
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if (((lo >> 17) & 3) != 3) return false;  // XTILECFG and XTILEDATA enabled by the OS
  constexpr long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
  return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}
#endif

bool amx_usable() {
#if XG_HAVE_AMX
  static const bool ok = amx_usable_probe();
  return ok;
#else
  return false;
#endif
}

// The CPU has the instructions and the OS saves their registers (the compiler runtime's checks
// include XGETBV's ZMM and YMM state bits).
bool kernel_usable(int kernel) {
  switch (kernel) {
    case PORTABLE:
      return true;
    case AMX:
      return amx_usable();
#if XG_HAVE_SIMD
    case AVX512_VNNI:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vnni");
    case AVX2:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2");
#endif
#if XG_HAVE_AVX_VNNI
    case AVX_VNNI:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avxvnni");
#endif
    default:
      return false;
  }
}

// ------------------------------------------------------------------ packed weights
//
// A weight matrix M (R row groups, K terms each, N columns), int16; a convolution's row
// group is a kernel row (K = kw * Cin terms in the canvas's (kx, c) order), a matrix
// product has R = 1.
//
// AMX: for each block of 16 columns j, row group r and 64-term chunk kc: the high-digit B
// tile, then the low-digit one, 1,024 bytes each, in AMX's layout (tile row t holds terms
// 4t..4t+3 of the chunk for each of the 16 columns). Terms past K and columns past N are 0.
// AVX-512 VNNI, AVX-VNNI and AVX2 (pairs layout): for each block j, row group r and pair of terms p
// (2p, 2p+1): the high digits, then the low digits, 16 columns x 2 terms of int16 each
// (element 2*col + q is term 2p+q of column col), 128 bytes a pair. Terms past K and columns
// past N are 0.
// Portable: for each block j and row group r, K rows of 16 int32 (columns past N are 0).

struct Shape {
  int64_t r, k, n;
  int64_t blocks() const { return (n + 15) / 16; }
  int64_t chunks() const { return (k + 63) / 64; }
  int64_t pairs() const { return (k + 1) / 2; }
};

int64_t packed_bytes(int kernel, const Shape& s) {
  if (kernel == AMX) return s.blocks() * s.r * s.chunks() * 2048;
  if (pairs_layout(kernel)) return s.blocks() * s.r * s.pairs() * 128;
  return s.blocks() * s.r * s.k * 16 * 4;
}

void pack(int kernel, const int16_t* m, const Shape& s, uint8_t* out) {
  std::memset(out, 0, packed_bytes(kernel, s));
  for (int64_t j = 0; j < s.blocks(); ++j)
    for (int64_t r = 0; r < s.r; ++r)
      for (int64_t k = 0; k < s.k; ++k)
        for (int64_t col = 0; col < 16 && j * 16 + col < s.n; ++col) {
          const int16_t v = m[(r * s.k + k) * s.n + j * 16 + col];
          if (kernel == AMX) {
            const int64_t kc = k / 64, t = (k % 64) / 4, q = k % 4;
            uint8_t* tile = out + ((j * s.r + r) * s.chunks() + kc) * 2048;
            tile[t * 64 + col * 4 + q] = static_cast<uint8_t>(static_cast<int8_t>(v >> 8));
            tile[1024 + t * 64 + col * 4 + q] = static_cast<uint8_t>(v & 255);
          } else if (pairs_layout(kernel)) {
            int16_t* pair = reinterpret_cast<int16_t*>(out) + ((j * s.r + r) * s.pairs() + k / 2) * 64;
            pair[col * 2 + k % 2] = static_cast<int16_t>(v >> 8);
            pair[32 + col * 2 + k % 2] = static_cast<int16_t>(v & 255);
          } else {
            reinterpret_cast<int32_t*>(out)[((j * s.r + r) * s.k + k) * 16 + col] = v;
          }
        }
}


// ------------------------------------------------------------------ canvases
//
// One image (hs x ws x c values, channels last) placed on a zero canvas of hc x wc pixels,
// source pixel (i, j) at (top + i*sy, left + j*sx); pixels landing outside are dropped.
// AMX: two planes (high digits int8, then low digits uint8) of `plane` bytes each;
// portable: one int16 plane of `plane` elements. `plane` covers every byte a tile reads.

struct Placement {
  int64_t hs, ws, c, top, left, sy, sx, hc, wc;
};

// With stack = kh > 1 (small channel counts), canvas row r holds rows r..r+kh-1 of the
// image's canvas side by side in each pixel ((kh, c) channels): a window row of kw pixels is
// then the whole window, kw * kh * c contiguous values, read in fewer 64-byte chunks. Values
// are written to an unstacked staging canvas first; finish() stacks it.
struct CanvasWriter {
  int kernel;
  int64_t plane;  // elements of one plane of the canvas the blocks read
  void* canvas;
  int64_t hc, wc, c, stack;  // the image's canvas: rows, pixels a row, channels; kernel rows stacked (1: none)
  void* staging;             // stack > 1: the image's canvas, unstacked (planes of `staged` elements)
  int64_t staged;
  void* target() const { return stack > 1 ? staging : canvas; }
  int64_t target_plane() const { return stack > 1 ? staged : plane; }
  void clear() const {
    std::memset(target(), 0, kernel == AMX ? 2 * target_plane() : target_plane() * sizeof(int16_t));
  }
  // n consecutive values src(from), src(from+1), ... at elements at, at+1, ... of the image's canvas
  template <class Src>
  void run(int64_t at, int64_t from, int64_t n, const Src& src) const {
    if (kernel == AMX) {
      int8_t* h = static_cast<int8_t*>(target()) + at;
      uint8_t* l = reinterpret_cast<uint8_t*>(static_cast<int8_t*>(target()) + target_plane()) + at;
      for (int64_t i = 0; i < n; ++i) {
        const int16_t v = src(from + i);
        h[i] = static_cast<int8_t>(v >> 8);
        l[i] = static_cast<uint8_t>(v & 255);
      }
    } else {
      int16_t* w = static_cast<int16_t*>(target()) + at;
      for (int64_t i = 0; i < n; ++i) w[i] = src(from + i);
    }
  }
  // the c channels of pixel (y, x) of the image's canvas: src(from), ..., src(from + c - 1)
  template <class Src>
  void pixel(int64_t y, int64_t x, int64_t from, const Src& src) const {
    run((y * wc + x) * c, from, c, src);
  }
  // n pixels (y, x), (y, x+1), ...
  template <class Src>
  void pixels(int64_t y, int64_t x, int64_t n, int64_t from, const Src& src) const {
    run((y * wc + x) * c, from, n * c, src);
  }
  // the canvas the blocks read: stacked row r, pixel x, slot ky = staged row r + ky, pixel x
  void finish() const {
    if (stack == 1) return;
    const int64_t rows = hc - stack + 1, size = kernel == AMX ? 1 : 2;
    for (int p = 0; p < (kernel == AMX ? 2 : 1); ++p) {
      const uint8_t* from = static_cast<const uint8_t*>(staging) + p * staged * size;
      uint8_t* to = static_cast<uint8_t*>(canvas) + p * plane * size;
      const int64_t bytes = c * size;
      for (int64_t r = 0; r < rows; ++r) {
        if (bytes == 1) {  // one channel: interleave the rows byte by byte
          for (int64_t ky = 0; ky < stack; ++ky) {
            const uint8_t* __restrict f = from + (r + ky) * wc;
            uint8_t* __restrict t = to + r * wc * stack + ky;
            for (int64_t x = 0; x < wc; ++x) t[x * stack] = f[x];
          }
          continue;
        }
        uint8_t* t = to + r * wc * stack * bytes;
        if (bytes == 8) {  // word copies
          for (int64_t x = 0; x < wc; ++x)
            for (int64_t ky = 0; ky < stack; ++ky, t += 8) std::memcpy(t, from + ((r + ky) * wc + x) * 8, 8);
          continue;
        }
        for (int64_t x = 0; x < wc; ++x)
          for (int64_t ky = 0; ky < stack; ++ky, t += bytes) {
            const uint8_t* f = from + ((r + ky) * wc + x) * bytes;
            if (bytes <= 16)
              std::memcpy(t, f, 16);  // the extra bytes land where the next copies go (slack after the last)
            else
              std::memcpy(t, f, bytes);
          }
      }
    }
  }
};

template <class Src>
void fill_canvas(const CanvasWriter& out, const Placement& p, const Src& src) {
  out.clear();
  const bool whole_rows = p.sx == 1 && p.left >= 0 && p.left + p.ws <= p.wc;
  for (int64_t i = 0; i < p.hs; ++i) {
    const int64_t y = p.top + i * p.sy;
    if (y < 0 || y >= p.hc) continue;
    if (whole_rows) {
      out.pixels(y, p.left, p.ws, i * p.ws * p.c, src);
      continue;
    }
    for (int64_t j = 0; j < p.ws; ++j) {
      const int64_t x = p.left + j * p.sx;
      if (x >= 0 && x < p.wc) out.pixel(y, x, (i * p.ws + j) * p.c, src);
    }
  }
  out.finish();
}

// ------------------------------------------------------------------ 16 x 16 product blocks
//
// A block is 16 output rows (positions) x 16 columns (channels): for row m and column col,
// the sum over row groups r and terms k of A(m, r, k) * M[r][k][16*jb + col], where
// A(m, r, k) is the canvas element at offs[r] + m*stride + k.

struct Block {  // where a block's sums go
  int64_t index[16];  // output position of each row, -1 if none
  int64_t rows;       // rows up to the last valid one
  int64_t c0, cols;   // first column, valid columns
};

// A block's exact sums, row-major 16 x 16: int64 (`wide`), or AMX's three int32 digit sums
// (`t`: xl*wl, the cross products, xh*wh) recombined as they are read, plus `wide` if the
// sums were flushed before (more than FLUSH_CHUNKS chunks).
struct Sums {
  const int64_t* wide;  // or null
  const int32_t* t;     // or null
  int64_t at(int64_t m, int64_t col) const {
    const int64_t i = m * 16 + col;
    int64_t v = wide ? wide[i] : 0;
    if (t) v += (static_cast<int64_t>(t[512 + i]) << 16) + (static_cast<int64_t>(t[256 + i]) << 8) + t[i];
    return v;
  }
#if defined(__AVX512F__)
  __m512i half(int64_t m, int h) const {  // columns 8h .. 8h+7 of row m
    const int64_t i = m * 16 + 8 * h;
    __m512i v = wide ? _mm512_loadu_si512(wide + i) : _mm512_setzero_si512();
    if (t) {
      const __m512i low = _mm512_cvtepi32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + i)));
      const __m512i mid = _mm512_cvtepi32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 256 + i)));
      const __m512i top = _mm512_cvtepi32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 512 + i)));
      v = _mm512_add_epi64(v, _mm512_add_epi64(_mm512_add_epi64(_mm512_slli_epi64(top, 16), _mm512_slli_epi64(mid, 8)),
                                              low));
    }
    return v;
  }
#endif
};

#if XG_HAVE_AMX
struct TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

TileConfig seven_full_tiles() {
  TileConfig cfg;
  for (int t = 0; t < 7; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  return cfg;
}

__attribute__((target("amx-tile,amx-int8"))) void amx_begin() {
  // A static object, and a barrier that shows the compiler its bytes are read: GCC 12 treated a
  // stack copy's stores as dead before LDTILECFG in one build (the tiles then came up invalid).
  alignas(64) static const TileConfig cfg = seven_full_tiles();
  __asm__ __volatile__("" : : "r"(&cfg) : "memory");
  _tile_loadconfig(&cfg);
}

__attribute__((target("amx-tile,amx-int8"))) void amx_end() { _tile_release(); }

// Tiles: 0 A high digits, 1 A low digits, 2 B high, 3 B low; the sums 4 (xl*wl),
// 5 (xl*wh + xh*wl) and 6 (xh*wh), int32, stored as t[0..255], t[256..511], t[512..767].
struct AmxSums {
  alignas(64) int32_t t[768];
  alignas(64) int64_t wide[256];  // the int64 total of earlier flushes (more than FLUSH_CHUNKS chunks)
  bool has_wide;
  Block block;
};

__attribute__((target("amx-tile,amx-int8"))) void amx_store(int32_t* t) {
  _tile_stored(4, t, 64);
  _tile_stored(5, t + 256, 64);
  _tile_stored(6, t + 512, 64);
}

void recombine(const int32_t* __restrict t, const int64_t* __restrict wide, bool has_wide, int64_t* __restrict out) {
  for (int i = 0; i < 256; ++i)
    out[i] = (static_cast<int64_t>(t[512 + i]) << 16) + (static_cast<int64_t>(t[256 + i]) << 8) + t[i] +
             (has_wide ? wide[i] : 0);
}

// Issues one block's tile products; the sums stay in tiles 4-6 (earlier flushes in s.wide).
__attribute__((target("amx-tile,amx-int8"))) void amx_products(const int8_t* hi, int64_t plane, const int64_t* offs,
                                                                int64_t groups, int64_t stride, int64_t chunks,
                                                                const uint8_t* b, AmxSums& s) {
  const uint8_t* lo = reinterpret_cast<const uint8_t*>(hi + plane);
  _tile_zero(4);
  _tile_zero(5);
  _tile_zero(6);
  s.has_wide = false;
  int64_t since_flush = 0;
  for (int64_t r = 0; r < groups; ++r) {
    for (int64_t kc = 0; kc < chunks; ++kc, b += 2048) {
      if (since_flush == FLUSH_CHUNKS) {  // int32 sums hold FLUSH_CHUNKS chunks exactly (see the top)
        amx_store(s.t);
        alignas(64) int64_t part[256];
        recombine(s.t, s.wide, s.has_wide, part);
        std::memcpy(s.wide, part, sizeof part);
        s.has_wide = true;
        _tile_zero(4);
        _tile_zero(5);
        _tile_zero(6);
        since_flush = 0;
      }
      _tile_loadd(0, hi + offs[r] + kc * 64, stride);
      _tile_loadd(1, lo + offs[r] + kc * 64, stride);
      _tile_loadd(2, b, 64);
      _tile_loadd(3, b + 1024, 64);
      _tile_dpbuud(4, 1, 3);
      _tile_dpbusd(5, 1, 2);
      _tile_dpbsud(5, 0, 3);
      _tile_dpbssd(6, 0, 2);
      ++since_flush;
    }
  }
}
#endif

void portable_block(const int16_t* a, const int64_t* offs, int64_t groups, int64_t stride, int64_t k,
                    const int32_t* b, int64_t rows, int64_t* out) {
  for (int64_t m = 0; m < rows; ++m) {
    int64_t acc[16] = {};
    for (int64_t r = 0; r < groups; ++r) {
      const int16_t* row = a + offs[r] + m * stride;
      const int32_t* w = b + r * k * 16;
      for (int64_t i = 0; i < k; ++i) {
        const int32_t v = row[i];
        if (v == 0) continue;
        for (int col = 0; col < 16; ++col) acc[col] += static_cast<int64_t>(v * w[i * 16 + col]);
      }
    }
    std::memcpy(out + m * 16, acc, sizeof acc);
  }
}

#if XG_HAVE_SIMD
// Term pair p of canvas row `row`, (a[2p], a[2p+1]), as one int32 (the lanes a pair product takes).
inline int32_t term_pair(const int16_t* row, int64_t p) {
  int32_t v;
  std::memcpy(&v, row + 2 * p, 4);
  return v;
}

// The SIMD kernels' int32 digit sums (hi: x*wh, lo: x*wl) of 8 rows added to their int64 sums
// (rows of 16 in memory: registers hold the int32 sums) as (hi << 8) + lo, and cleared.
__attribute__((target("avx512f,avx512bw"))) inline void flush8(__m512i (&hi)[8], __m512i (&lo)[8], int64_t* wide) {
  for (int i = 0; i < 8; ++i) {
    const __m256i h[2] = {_mm512_castsi512_si256(hi[i]), _mm512_extracti64x4_epi64(hi[i], 1)};
    const __m256i l[2] = {_mm512_castsi512_si256(lo[i]), _mm512_extracti64x4_epi64(lo[i], 1)};
    for (int half = 0; half < 2; ++half) {
      int64_t* at = wide + i * 16 + half * 8;
      _mm512_store_si512(at, _mm512_add_epi64(_mm512_load_si512(at),
                                              _mm512_add_epi64(_mm512_slli_epi64(_mm512_cvtepi32_epi64(h[half]), 8),
                                                               _mm512_cvtepi32_epi64(l[half]))));
    }
    hi[i] = lo[i] = _mm512_setzero_si512();
  }
}

__attribute__((target("avx2"))) inline void flush4(__m256i (&hi)[4], __m256i (&lo)[4], int64_t (&wide)[4][8]) {
  for (int i = 0; i < 4; ++i) {
    alignas(32) int32_t h[8], l[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(h), hi[i]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(l), lo[i]);
    for (int col = 0; col < 8; ++col) wide[i][col] += (static_cast<int64_t>(h[col]) << 8) + l[col];
    hi[i] = lo[i] = _mm256_setzero_si256();
  }
}

// One block's exact sums with AVX-512 VNNI: 8 rows at a time, the two digit sums of each row in
// one zmm of 16 int32 columns each (VPDPWSSD: a broadcast term pair of the row times a pair of
// weight digits for 16 columns); into `out` (int64, 16 x 16, 64-byte aligned) every FLUSH_PAIRS
// pairs and at the end. Blocks of at most 8 columns go to vnni512_narrow_block.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void vnni512_narrow_block(
    const int16_t* a, const int64_t* offs, int64_t groups, int64_t stride, int64_t pairs, const int16_t* b,
    int64_t* out);

__attribute__((target("avx512f,avx512bw,avx512vnni"))) void vnni512_block(
    const int16_t* a, const int64_t* offs, int64_t groups, int64_t stride, int64_t pairs, const int16_t* b,
    int64_t rows, int64_t cols, int64_t* out) {
  if (cols <= 8 && rows > 8) return vnni512_narrow_block(a, offs, groups, stride, pairs, b, out);
  for (int64_t m0 = 0; m0 < rows; m0 += 8) {
    __m512i hi[8], lo[8];
    int64_t* wide = out + m0 * 16;
    for (int i = 0; i < 8; ++i) {
      hi[i] = lo[i] = _mm512_setzero_si512();
      _mm512_store_si512(wide + i * 16, _mm512_setzero_si512());
      _mm512_store_si512(wide + i * 16 + 8, _mm512_setzero_si512());
    }
    int64_t since_flush = 0;
    for (int64_t r = 0; r < groups; ++r) {
      const int16_t* row = a + offs[r] + m0 * stride;
      const int16_t* w = b + r * pairs * 64;
      for (int64_t p = 0; p < pairs; ++p, w += 64) {
        if (since_flush == FLUSH_PAIRS) {  // int32 sums hold FLUSH_PAIRS pairs exactly (see the top)
          flush8(hi, lo, wide);
          since_flush = 0;
        }
        const __m512i wh = _mm512_loadu_si512(w), wl = _mm512_loadu_si512(w + 32);
        for (int i = 0; i < 8; ++i) {
          const __m512i x = _mm512_set1_epi32(term_pair(row + i * stride, p));
          hi[i] = _mm512_dpwssd_epi32(hi[i], x, wh);
          lo[i] = _mm512_dpwssd_epi32(lo[i], x, wl);
        }
        ++since_flush;
      }
    }
    flush8(hi, lo, wide);
  }
}

// The int32 digit sums of rows m (lanes 0-7) and m + 8 (lanes 8-15), i = 0..7, columns 0-7, added
// to their int64 sums and cleared.
__attribute__((target("avx512f,avx512bw"))) inline void flush_paired(__m512i (&hi)[8], __m512i (&lo)[8],
                                                                       int64_t* wide) {
  for (int i = 0; i < 8; ++i) {
    const __m256i h[2] = {_mm512_castsi512_si256(hi[i]), _mm512_extracti64x4_epi64(hi[i], 1)};
    const __m256i l[2] = {_mm512_castsi512_si256(lo[i]), _mm512_extracti64x4_epi64(lo[i], 1)};
    for (int half = 0; half < 2; ++half) {
      int64_t* at = wide + (i + 8 * half) * 16;
      _mm512_store_si512(at, _mm512_add_epi64(_mm512_load_si512(at),
                                              _mm512_add_epi64(_mm512_slli_epi64(_mm512_cvtepi32_epi64(h[half]), 8),
                                                               _mm512_cvtepi32_epi64(l[half]))));
    }
    hi[i] = lo[i] = _mm512_setzero_si512();
  }
}

// vnni512_block for blocks of at most 8 columns: rows m and m + 8 share a register (lanes 0-7 and
// 8-15: each half takes its row's term pair, the 8 columns' weights are repeated), so 16 rows take
// the instructions of 8. Columns 8-15 of `out` are left as they are (past the block's columns).
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void vnni512_narrow_block(
    const int16_t* a, const int64_t* offs, int64_t groups, int64_t stride, int64_t pairs, const int16_t* b,
    int64_t* out) {
  __m512i hi[8], lo[8];
  for (int i = 0; i < 8; ++i) hi[i] = lo[i] = _mm512_setzero_si512();
  for (int i = 0; i < 16; ++i) _mm512_store_si512(out + i * 16, _mm512_setzero_si512());
  int64_t since_flush = 0;
  for (int64_t r = 0; r < groups; ++r) {
    const int16_t* row = a + offs[r];
    const int16_t* w = b + r * pairs * 64;
    for (int64_t p = 0; p < pairs; ++p, w += 64) {
      if (since_flush == FLUSH_PAIRS) {  // int32 sums hold FLUSH_PAIRS pairs exactly (see the top)
        flush_paired(hi, lo, out);
        since_flush = 0;
      }
      const __m512i wh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)));
      const __m512i wl = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32)));
      for (int i = 0; i < 8; ++i) {
        const __m512i x = _mm512_mask_set1_epi32(_mm512_set1_epi32(term_pair(row + i * stride, p)), 0xff00,
                                                 term_pair(row + (i + 8) * stride, p));
        hi[i] = _mm512_dpwssd_epi32(hi[i], x, wh);
        lo[i] = _mm512_dpwssd_epi32(lo[i], x, wl);
      }
      ++since_flush;
    }
  }
  flush_paired(hi, lo, out);
}

// The same with AVX2: VPMADDWD (a term pair times a pair of weight digits, summed into int32
// lanes) then VPADDD, 4 rows x 8 columns at a time (16 ymm registers).
__attribute__((target("avx2"))) void avx2_block(const int16_t* a, const int64_t* offs, int64_t groups,
                                                int64_t stride, int64_t pairs, const int16_t* b, int64_t rows,
                                                int64_t cols, int64_t* out) {
  for (int64_t m0 = 0; m0 < rows; m0 += 4)
    for (int half = 0; half < (cols > 8 ? 2 : 1); ++half) {
      __m256i hi[4], lo[4];
      int64_t wide[4][8] = {};
      for (int i = 0; i < 4; ++i) hi[i] = lo[i] = _mm256_setzero_si256();
      int64_t since_flush = 0;
      for (int64_t r = 0; r < groups; ++r) {
        const int16_t* row = a + offs[r] + m0 * stride;
        const int16_t* w = b + r * pairs * 64 + half * 16;
        for (int64_t p = 0; p < pairs; ++p, w += 64) {
          if (since_flush == FLUSH_PAIRS) {  // int32 sums hold FLUSH_PAIRS pairs exactly (see the top)
            flush4(hi, lo, wide);
            since_flush = 0;
          }
          const __m256i wh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
          const __m256i wl = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32));
          for (int i = 0; i < 4; ++i) {
            const __m256i x = _mm256_set1_epi32(term_pair(row + i * stride, p));
            hi[i] = _mm256_add_epi32(hi[i], _mm256_madd_epi16(x, wh));
            lo[i] = _mm256_add_epi32(lo[i], _mm256_madd_epi16(x, wl));
          }
          ++since_flush;
        }
      }
      flush4(hi, lo, wide);
      for (int i = 0; i < 4; ++i) std::memcpy(out + (m0 + i) * 16 + half * 8, wide[i], sizeof wide[i]);
    }
}

#if XG_HAVE_AVX_VNNI
// avx2_block with AVX-VNNI (x86 with AVX2 and the VEX form of VPDPWSSD, no AVX-512: Intel client
// CPUs since Alder Lake): one VPDPWSSD where AVX2 takes VPMADDWD and VPADDD; the same sums.
__attribute__((target("avx2,avxvnni"))) void avx_vnni_block(const int16_t* a, const int64_t* offs, int64_t groups,
                                                            int64_t stride, int64_t pairs, const int16_t* b,
                                                            int64_t rows, int64_t cols, int64_t* out) {
  for (int64_t m0 = 0; m0 < rows; m0 += 4)
    for (int half = 0; half < (cols > 8 ? 2 : 1); ++half) {
      __m256i hi[4], lo[4];
      int64_t wide[4][8] = {};
      for (int i = 0; i < 4; ++i) hi[i] = lo[i] = _mm256_setzero_si256();
      int64_t since_flush = 0;
      for (int64_t r = 0; r < groups; ++r) {
        const int16_t* row = a + offs[r] + m0 * stride;
        const int16_t* w = b + r * pairs * 64 + half * 16;
        for (int64_t p = 0; p < pairs; ++p, w += 64) {
          if (since_flush == FLUSH_PAIRS) {  // int32 sums hold FLUSH_PAIRS pairs exactly (see the top)
            flush4(hi, lo, wide);
            since_flush = 0;
          }
          const __m256i wh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
          const __m256i wl = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32));
          for (int i = 0; i < 4; ++i) {
            const __m256i x = _mm256_set1_epi32(term_pair(row + i * stride, p));
            hi[i] = _mm256_dpwssd_avx_epi32(hi[i], x, wh);
            lo[i] = _mm256_dpwssd_avx_epi32(lo[i], x, wl);
          }
          ++since_flush;
        }
      }
      flush4(hi, lo, wide);
      for (int i = 0; i < 4; ++i) std::memcpy(out + (m0 + i) * 16 + half * 8, wide[i], sizeof wide[i]);
    }
}
#endif
#endif

// ------------------------------------------------------------------ one image's convolution
//
// The valid convolution (kernel kh x kw, stride sh x sw) of a canvas of hc x wc x cin to
// oh x ow x cout. Each block's exact int64 sums (16 x 16, row-major) go to epilogue(sums, block).

struct Conv {
  int64_t cin, hc, wc, kh, kw, sh, sw, oh, ow, cout;
  bool stack = false;  // compute it on a canvas with the kernel rows stacked (CanvasWriter)
  // the geometry the blocks compute: with stacking, one kernel row of kh * cin channels
  Conv blocks_view() const {
    return stack ? Conv{cin * kh, hc - kh + 1, wc, 1, kw, sh, sw, oh, ow, cout} : *this;
  }
  Shape weights() const { return Shape{kh, kw * cin, cout}; }
  // Blocks of 16 positions y*wc + x taken as one strided run (stride 1 only; computes the wc - ow
  // positions past each output row too), else 16 positions of one output row at a time (computes
  // the positions past ow in a row's last block): whichever computes fewer.
  bool flat() const { return sh == 1 && sw == 1 && flat_blocks() <= row_blocks(); }
  int64_t flat_blocks() const { return ((oh - 1) * wc + ow + 15) / 16; }
  int64_t row_blocks() const { return oh * ((ow + 15) / 16); }
  int64_t blocks() const { return flat() ? flat_blocks() : row_blocks(); }
  // elements (bytes for AMX) of one canvas plane, up to the last one a tile reads (of blocks_view())
  int64_t plane() const {
    const int64_t chunked = (kw * cin + 63) / 64 * 64;
    int64_t end;
    if (flat()) {
      end = (blocks() * 16 - 1 + (kh - 1) * wc) * cin + chunked;
    } else {
      const int64_t x0 = (ow - 1) / 16 * 16;
      end = (((oh - 1) * sh + kh - 1) * wc + x0 * sw) * cin + 15 * sw * cin + chunked;
    }
    return (std::max(end, hc * wc * cin) + 63) / 64 * 64;
  }
  Placement placement(const int64_t* src_shape_top_left_step) const {
    const int64_t* q = src_shape_top_left_step;
    return Placement{q[0], q[1], cin, q[2], q[3], q[4], q[5], hc, wc};
  }
};

CanvasWriter canvas_for(int kernel, const Conv& cv) {
  const Conv b = cv.blocks_view();
  const int64_t staged = cv.stack ? cv.hc * cv.wc * cv.cin + 64 : 0;  // 64: finish()'s 16-byte reads
  return CanvasWriter{kernel, b.plane(), scratch<uint8_t>(CANVAS, 2 * b.plane() + 64), cv.hc, cv.wc, cv.cin,
                      cv.stack ? cv.kh : 1, cv.stack ? scratch<uint8_t>(STAGING, 2 * staged) : nullptr, staged};
}

// Block b's rows and the canvas offset of each kernel row.
int64_t block_rows(const Conv& cv, int64_t b, int64_t* index, int64_t* offs) {
  if (cv.flat()) {
    const int64_t first = b * 16;
    int64_t y = first / cv.wc, x = first % cv.wc;
    for (int m = 0; m < 16; ++m) {
      index[m] = (y < cv.oh && x < cv.ow) ? y * cv.ow + x : -1;
      if (++x == cv.wc) x = 0, ++y;
    }
    for (int64_t r = 0; r < cv.kh; ++r) offs[r] = (first + r * cv.wc) * cv.cin;
  } else {
    const int64_t xblocks = (cv.ow + 15) / 16, y = b / xblocks, x0 = b % xblocks * 16;
    for (int m = 0; m < 16; ++m) index[m] = x0 + m < cv.ow ? y * cv.ow + x0 + m : -1;
    for (int64_t r = 0; r < cv.kh; ++r) offs[r] = ((y * cv.sh + r) * cv.wc + x0 * cv.sw) * cv.cin;
  }
  int64_t rows = 16;
  while (rows > 0 && index[rows - 1] < 0) --rows;
  return rows;
}

template <class Epilogue>
void conv_blocks(int kernel, const Conv& stated, const CanvasWriter& canvas, const uint8_t* packed,
                 Epilogue&& epilogue) {
  const Conv cv = stated.blocks_view();
  const Shape ws = cv.weights();
  const int64_t jblocks = ws.blocks();
  const int64_t per_block = packed_bytes(kernel, Shape{ws.r, ws.k, 16});
  const int64_t stride = cv.sw * cv.cin;
  int64_t* offs = scratch<int64_t>(OFFSETS, cv.kh);
  alignas(64) int64_t sums[256];
#if XG_HAVE_AMX
  if (kernel == AMX) {
    // Software pipeline: block i's tile products are issued, then block i-1's sums (stored
    // before) are recombined and finished on the core while the tile unit works.
    AmxSums* slots = scratch<AmxSums>(SUMS, 2);
    AmxSums* done = nullptr;
    for (int64_t b = 0, i = 0; b < cv.blocks(); ++b) {
      Block blk;
      blk.rows = block_rows(cv, b, blk.index, offs);
      if (blk.rows == 0) continue;
      for (int64_t j = 0; j < jblocks; ++j, ++i) {
        AmxSums& s = slots[i & 1];
        amx_products(static_cast<const int8_t*>(canvas.canvas), canvas.plane, offs, ws.r, stride, ws.chunks(), packed + j * per_block, s);
        if (done) epilogue(Sums{done->has_wide ? done->wide : nullptr, done->t}, static_cast<const Block&>(done->block));
        amx_store(s.t);
        s.block = blk;
        s.block.c0 = j * 16;
        s.block.cols = std::min<int64_t>(16, cv.cout - j * 16);
        done = &s;
      }
    }
    if (done) epilogue(Sums{done->has_wide ? done->wide : nullptr, done->t}, static_cast<const Block&>(done->block));
    return;
  }
#endif
  const int16_t* a = static_cast<const int16_t*>(canvas.canvas);
  for (int64_t b = 0; b < cv.blocks(); ++b) {
    Block blk;
    blk.rows = block_rows(cv, b, blk.index, offs);
    if (blk.rows == 0) continue;
    for (int64_t j = 0; j < jblocks; ++j) {
      const uint8_t* m = packed + j * per_block;
      blk.c0 = j * 16;
      blk.cols = std::min<int64_t>(16, cv.cout - j * 16);
#if XG_HAVE_SIMD
      if (kernel == AVX512_VNNI)
        vnni512_block(a, offs, ws.r, stride, ws.pairs(), reinterpret_cast<const int16_t*>(m), blk.rows, blk.cols,
                      sums);
      else if (kernel == AVX2)
        avx2_block(a, offs, ws.r, stride, ws.pairs(), reinterpret_cast<const int16_t*>(m), blk.rows, blk.cols, sums);
#if XG_HAVE_AVX_VNNI
      else if (kernel == AVX_VNNI)
        avx_vnni_block(a, offs, ws.r, stride, ws.pairs(), reinterpret_cast<const int16_t*>(m), blk.rows, blk.cols,
                       sums);
#endif
      else
#endif
        portable_block(a, offs, ws.r, stride, ws.k, reinterpret_cast<const int32_t*>(m), blk.rows, sums);
      epilogue(Sums{sums, nullptr}, static_cast<const Block&>(blk));
    }
  }
}

struct AmxScope {  // tile configuration for the calling thread while a task runs
  explicit AmxScope(int kernel) : on(kernel == AMX) {
#if XG_HAVE_AMX
    if (on) amx_begin();
#endif
  }
  ~AmxScope() {
#if XG_HAVE_AMX
    if (on) amx_end();
#endif
  }
  bool on;
};

// Requantizes each block (with the bias) into int16 values; optionally the ReLU (bits
// [acc > 0]) and the rank a following max-pool compares (acc, or max(acc, 0) after a ReLU).
// Rows are finished 16 columns at a time (fixed-size loops vectorize); `cols` are stored.
struct Requantizer {
  Requantizer(const Requant& rq, const int64_t* bias, int64_t cout, int16_t* values, bool relu, uint8_t* bits,
              int64_t* rank)
      : rq(rq), cout(cout), values(values), relu(relu), bits(bits), rank(rank) {
    padded_bias = scratch<int64_t>(BIAS, (cout + 15) / 16 * 16);
    for (int64_t i = 0; i < (cout + 15) / 16 * 16; ++i) padded_bias[i] = bias && i < cout ? bias[i] : 0;
  }
  void operator()(const Sums& sums, const Block& blk) {
    if (rq.right) return dispatch<true>(sums, blk);
    return dispatch<false>(sums, blk);
  }
  template <bool RIGHT>
  void dispatch(const Sums& sums, const Block& blk) {
    if (!relu) return rank ? run<RIGHT, false, false, true>(sums, blk) : run<RIGHT, false, false, false>(sums, blk);
    if (bits && rank) return run<RIGHT, true, true, true>(sums, blk);
    if (bits) return run<RIGHT, true, true, false>(sums, blk);
    if (rank) return run<RIGHT, true, false, true>(sums, blk);
    return run<RIGHT, true, false, false>(sums, blk);
  }
  template <bool RIGHT, bool RELU, bool BITS, bool RANK>
  void run(const Sums& sums, const Block& blk) {
    const int64_t* __restrict b = padded_bias + blk.c0;
    int64_t count = 0;
    for (int64_t m = 0; m < blk.rows; ++m) {
      if (blk.index[m] < 0) continue;
      const int64_t at = blk.index[m] * cout + blk.c0;
      count += row<RIGHT, RELU, BITS, RANK>(sums, m, b, blk.cols, values + at, BITS ? bits + at : nullptr,
                                            RANK ? rank + at : nullptr);
    }
    saturated += count;
  }
  // The 16 sums of row m (plus the bias) finished; the first `cols` stored. Returns the saturations.
  template <bool RIGHT, bool RELU, bool BITS, bool RANK>
  int64_t row(const Sums& s, int64_t m, const int64_t* __restrict b, int64_t cols, int16_t* __restrict v,
              uint8_t* __restrict bt, int64_t* __restrict rk) const {
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
    const __mmask16 keep = static_cast<__mmask16>((1u << cols) - 1);
    const __m512i lo = _mm512_set1_epi64(rq.qmin), hi = _mm512_set1_epi64(rq.qmax), zero = _mm512_setzero_si512();
    const __m512i one = _mm512_set1_epi64(1), bound = _mm512_set1_epi64(rq.bound);
    const __m128i s1 = _mm_cvtsi64_si128(rq.s1), left = _mm_cvtsi64_si128(rq.left);
    __m128i q16[2] = {_mm_setzero_si128(), _mm_setzero_si128()};
    __mmask8 positive[2] = {0, 0};
    int64_t count = 0;
    for (int h = 0; h < (cols > 8 ? 2 : 1); ++h) {  // (8 columns or fewer: one half)
      const __m512i acc = _mm512_add_epi64(s.half(m, h), _mm512_loadu_si512(b + 8 * h));
      const __m512i r = RIGHT ? _mm512_srai_epi64(_mm512_add_epi64(_mm512_sra_epi64(acc, s1), one), 1)
                              : _mm512_sll_epi64(_mm512_min_epi64(_mm512_max_epi64(acc, _mm512_sub_epi64(zero, bound)),
                                                                  bound), left);
      __m512i c = _mm512_min_epi64(_mm512_max_epi64(r, lo), hi);
      const __mmask8 lanes = static_cast<__mmask8>(keep >> (8 * h));
      count += __builtin_popcount(_mm512_mask_cmpneq_epi64_mask(lanes, c, r));
      positive[h] = _mm512_cmpgt_epi64_mask(acc, zero);
      if (RELU) c = _mm512_max_epi64(c, zero);
      q16[h] = _mm512_cvtepi64_epi16(c);
      if (RANK) _mm512_mask_storeu_epi64(rk + 8 * h, lanes, RELU ? _mm512_max_epi64(acc, zero) : acc);
    }
    _mm256_mask_storeu_epi16(v, keep, _mm256_inserti128_si256(_mm256_castsi128_si256(q16[0]), q16[1], 1));
    if (BITS)
      _mm_mask_storeu_epi8(bt, keep, _mm_maskz_set1_epi8(static_cast<__mmask16>(positive[0] | (positive[1] << 8)), 1));
    return count;
#else
    int64_t count = 0;
    for (int64_t col = 0; col < cols; ++col) {
      const int64_t acc = s.at(m, col) + b[col];
      const int64_t r = rq.round(acc);
      count += rq.saturates(r);
      const int16_t c = rq.clip(r);
      v[col] = RELU ? (c > 0 ? c : 0) : c;
      if (BITS) bt[col] = acc > 0;
      if (RANK) rk[col] = RELU ? (acc > 0 ? acc : 0) : acc;
    }
    return count;
#endif
  }
  Requant rq;
  int64_t cout;
  int16_t* values;
  bool relu;
  uint8_t* bits;  // or null
  int64_t* rank;  // or null
  int64_t* padded_bias;
  int64_t saturated = 0;
};

// Stores each block's sums (plus the bias, if any) as they are: int64 rows of cout.
struct WideWriter {
  const int64_t* bias;
  int64_t cout;
  int64_t* out;
  void operator()(const Sums& sums, const Block& blk) const {
    for (int64_t m = 0; m < blk.rows; ++m)
      if (blk.index[m] >= 0)
        for (int64_t col = 0; col < blk.cols; ++col)
          out[blk.index[m] * cout + blk.c0 + col] = sums.at(m, col) + (bias ? bias[blk.c0 + col] : 0);
  }
};

// ------------------------------------------------------------------ parameter blocks
// Python fills int64 arrays in these orders (xaihls/golden/native.py names the same fields).

enum ConvParam {
  C_N, C_H, C_W, C_C, C_O, C_KH, C_KW, C_SH, C_SW, C_PH, C_PW, C_OH, C_OW,
  C_SHIFT, C_QMIN, C_QMAX,                              // requantization of the convolution
  C_RELU, C_KEEP_BITS,                                  // a ReLU follows; keep its bits
  C_POOL, C_PKH, C_PKW, C_PSH, C_PSW, C_POH, C_POW,     // a max-pool follows (after the ReLU if any)
  C_MODE,                                               // backward: 0 mask, 1 guided, 2 deconv
  C_PSHIFT, C_PQMIN, C_PQMAX,                           // backward: requantization of the pool's gradient
  C_STACK,                                              // stack kernel rows (CanvasWriter); the weights packed so
  C_PARAMS
};

enum LinearParam { L_N, L_I, L_O, L_SHIFT, L_QMIN, L_QMAX, L_RELU, L_KEEP_BITS, L_MODE, L_PARAMS };

struct PoolGeometry {
  int64_t kh, kw, sh, sw, oh, ow;
  int64_t taps() const { return kh * kw; }
  bool overlapping() const { return sh < kh || sw < kw; }
};

// g through a ReLU backwards into out (may be g itself): mask g * bit; guided max(g * bit, 0);
// deconv max(g, 0) (bits unused; none given: every bit set).
void relu_backward_run(int16_t* out, const int16_t* g, const uint8_t* bits, int64_t n, int64_t mode) {
  if (mode == 2) {
    for (int64_t i = 0; i < n; ++i) out[i] = std::max<int16_t>(g[i], 0);
  } else if (bits == nullptr) {
    if (out != g) std::memcpy(out, g, n * sizeof(int16_t));
  } else if (mode == 1) {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int16_t>(std::max<int16_t>(g[i], 0) * (bits[i] != 0));
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int16_t>(g[i] * (bits[i] != 0));
  }
}

struct Counts {  // saturation counts summed over tasks
  std::atomic<int64_t> v[2] = {{0}, {0}};
  void add(int i, int64_t n) {
    if (n) v[i].fetch_add(n, std::memory_order_relaxed);
  }
};

// Loops over channels run 16 at a time with a fixed trip count (compilers turn those into
// vector instructions whatever the channel count), then one at a time for the rest.
#define XG_BY16(n, i, body)                                     \
  {                                                             \
    int64_t i##0 = 0;                                           \
    for (; i##0 + 16 <= (n); i##0 += 16)                        \
      for (int64_t i = i##0; i < i##0 + 16; ++i) body;          \
    for (; i##0 + 8 <= (n); i##0 += 8)                          \
      for (int64_t i = i##0; i < i##0 + 8; ++i) body;           \
    for (int64_t i = i##0; i < (n); ++i) body;                  \
  }

// First maximum of rank in raster order over each window (a later tap is kept only where its rank is
// strictly larger), channels innermost; the value and tap of the kept one.
void max_pool(const PoolGeometry& pg, int64_t ow, int64_t o, const int64_t* rank, const int16_t* values, int16_t* out,
              uint8_t* index) {
  for (int64_t py = 0; py < pg.oh; ++py)
    for (int64_t px = 0; px < pg.ow; ++px) {
      int16_t* val = out + (py * pg.ow + px) * o;
      uint8_t* tap = index + (py * pg.ow + px) * o;
      const int64_t first = ((py * pg.sh) * ow + px * pg.sw) * o;
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
      for (int64_t ch = 0; ch < o; ch += 8) {  // 8 channels in registers across the window's taps
        const __mmask8 lanes = static_cast<__mmask8>(o - ch >= 8 ? 0xff : (1u << (o - ch)) - 1);
        __m512i best = _mm512_maskz_loadu_epi64(lanes, rank + first + ch);
        __m128i v = _mm_maskz_loadu_epi16(lanes, values + first + ch), t = _mm_setzero_si128();
        for (int64_t ky = 0, k = 0; ky < pg.kh; ++ky)
          for (int64_t kx = 0; kx < pg.kw; ++kx, ++k) {
            if (k == 0) continue;
            const int64_t at = ((py * pg.sh + ky) * ow + px * pg.sw + kx) * o + ch;
            const __m512i r = _mm512_maskz_loadu_epi64(lanes, rank + at);
            const __mmask8 gt = _mm512_mask_cmpgt_epi64_mask(lanes, r, best);
            best = _mm512_mask_mov_epi64(best, gt, r);
            v = _mm_mask_mov_epi16(v, gt, _mm_maskz_loadu_epi16(lanes, values + at));
            t = _mm_mask_mov_epi8(t, gt, _mm_set1_epi8(static_cast<char>(k)));
          }
        _mm_mask_storeu_epi16(val + ch, lanes, v);
        _mm_mask_storeu_epi8(tap + ch, lanes, t);
      }
#else
      for (int64_t ch = 0; ch < o; ++ch) {
        int64_t best = rank[first + ch];
        int16_t v = values[first + ch];
        uint8_t t = 0;
        for (int64_t ky = 0, k = 0; ky < pg.kh; ++ky)
          for (int64_t kx = 0; kx < pg.kw; ++kx, ++k) {
            const int64_t at = ((py * pg.sh + ky) * ow + px * pg.sw + kx) * o + ch;
            if (k > 0 && rank[at] > best) best = rank[at], v = values[at], t = static_cast<uint8_t>(k);
          }
        val[ch] = v;
        tap[ch] = t;
      }
#endif
    }
}

// A window's gradient at one of its taps: its value where the kept tap is t, else 0.
void route_tap(int16_t* __restrict out, const uint8_t* __restrict index, const int16_t* __restrict g, uint8_t t,
               int64_t o) {
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
  const __m128i tt = _mm_set1_epi8(static_cast<char>(t));
  for (int64_t ch = 0; ch < o; ch += 16) {
    const __mmask16 lanes = static_cast<__mmask16>(o - ch >= 16 ? 0xffff : (1u << (o - ch)) - 1);
    const __mmask16 kept = _mm_mask_cmpeq_epi8_mask(lanes, _mm_maskz_loadu_epi8(lanes, index + ch), tt);
    _mm256_mask_storeu_epi16(out + ch, lanes, _mm256_maskz_loadu_epi16(kept, g + ch));
  }
#else
  XG_BY16(o, ch, out[ch] = static_cast<int16_t>(g[ch] * static_cast<int16_t>(index[ch] == t)))
#endif
}

}  // namespace

// ------------------------------------------------------------------ entry points

XG_API int xg_version() { return XG_VERSION; }

// Whether product kernel `kernel` (Kernel's numbers, named in native.py) runs on this CPU and build.
XG_API int xg_kernel_usable(int kernel) { return kernel_usable(kernel) ? 1 : 0; }

// The lengths of the parameter blocks, which Python checks against its field names when loading.
XG_API void xg_param_counts(int64_t* out) {
  out[0] = C_PARAMS;
  out[1] = L_PARAMS;
}

XG_API int xg_openmp() {
#if defined(_OPENMP)
  return 1;
#else
  return 0;
#endif
}

XG_API int64_t xg_packed_bytes(int kernel, int64_t r, int64_t k, int64_t n) {
  return packed_bytes(kernel, Shape{r, k, n});
}

XG_API void xg_pack(int kernel, const int16_t* m, int64_t r, int64_t k, int64_t n, uint8_t* out) {
  pack(kernel, m, Shape{r, k, n}, out);
}

// The exact int64 sums of a convolution of n images placed on canvases (kernels.conv2d and
// kernels.conv_transpose2d): p = hs, ws, top, left, sy, sx, cin, hc, wc, kh, kw, sh, sw, oh, ow, cout, n, stack.
XG_API int xg_conv_acc(int kernel, int threads, const int64_t* p, const int16_t* x, const uint8_t* packed,
                       const int64_t* bias, int64_t* acc) {
  const Conv cv{p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13], p[14], p[15], p[17] != 0};
  const Placement pl = cv.placement(p);
  parallel_for(p[16], threads, [&](int64_t img) {
    AmxScope amx(kernel);
    const CanvasWriter canvas = canvas_for(kernel, cv);
    const int16_t* src = x + img * pl.hs * pl.ws * pl.c;
    fill_canvas(canvas, pl, [src](int64_t i) { return src[i]; });
    int64_t* dst = acc + img * cv.oh * cv.ow * cv.cout;
    conv_blocks(kernel, cv, canvas, packed, WideWriter{bias, cv.cout, dst});
  });
  return 0;
}

// A convolution layer's forward pass with what follows it: requantization (counted in
// counts[0]), an optional ReLU (bit [acc > 0], kept if asked), an optional max-pool ranked by
// the wide accumulator (max(acc, 0) after a ReLU), first maximum in raster order on ties.
// x (n, h, w, c) int16; y (n, oh, ow, o) or (n, poh, pow, o); bits (n, oh, ow, o); index (n, poh, pow, o).
XG_API int xg_conv_forward(int kernel, int threads, const int64_t* p, const int16_t* x, const uint8_t* packed,
                           const int64_t* bias, int16_t* y, uint8_t* bits, uint8_t* index, int64_t* counts) {
  const Conv cv{p[C_C], p[C_H] + 2 * p[C_PH], p[C_W] + 2 * p[C_PW], p[C_KH], p[C_KW], p[C_SH], p[C_SW],
                p[C_OH], p[C_OW], p[C_O], p[C_STACK] != 0};
  const Placement pl{p[C_H], p[C_W], p[C_C], p[C_PH], p[C_PW], 1, 1, cv.hc, cv.wc};
  const Requant rq(p[C_SHIFT], p[C_QMIN], p[C_QMAX]);
  const PoolGeometry pg{p[C_PKH], p[C_PKW], p[C_PSH], p[C_PSW], p[C_POH], p[C_POW]};
  const int64_t outputs = cv.oh * cv.ow * cv.cout, pooled = pg.oh * pg.ow * cv.cout;
  const bool relu = p[C_RELU], keep = p[C_KEEP_BITS], pooling = p[C_POOL];
  Counts sat;
  parallel_for(p[C_N], threads, [&](int64_t img) {
    AmxScope amx(kernel);
    const CanvasWriter canvas = canvas_for(kernel, cv);
    const int16_t* src = x + img * pl.hs * pl.ws * pl.c;
    fill_canvas(canvas, pl, [src](int64_t i) { return src[i]; });
    Requantizer epilogue{rq, bias, cv.cout, pooling ? scratch<int16_t>(VALUES, outputs) : y + img * outputs, relu,
                         relu && keep ? bits + img * outputs : nullptr, pooling ? scratch<int64_t>(RANK, outputs) : nullptr};
    conv_blocks(kernel, cv, canvas, packed, epilogue);
    sat.add(0, epilogue.saturated);
    if (pooling) max_pool(pg, cv.ow, cv.cout, epilogue.rank, epilogue.values, y + img * pooled, index + img * pooled);
  });
  counts[0] = sat.v[0].load();
  return 0;
}

// The same layers backwards: the gradient at the pool's output routed to each window's kept
// tap (summed where windows overlap) and requantized (counted in counts[1]); through the ReLU
// by mode; through the convolution, requantized (counted in counts[0]): the input gradient is
// the gradient at the output spread out by the stride on a canvas framed by kh-1-ph rows above
// (kw-1-pw columns left; a negative frame crops), convolved at stride 1 with the kernel
// rotated by 180 degrees, channel roles swapped (the packed matrix).
// g (n, poh, pow, o) or (n, oh, ow, o); g_in (n, h, w, c).
XG_API int xg_conv_backward(int kernel, int threads, const int64_t* p, const int16_t* g, const uint8_t* index,
                            const uint8_t* bits, const uint8_t* packed, int16_t* g_in, int64_t* counts) {
  const int64_t o = p[C_O], oh = p[C_OH], ow = p[C_OW], sh = p[C_SH], sw = p[C_SW];
  const Conv cv{o, p[C_H] + p[C_KH] - 1, p[C_W] + p[C_KW] - 1, p[C_KH], p[C_KW], 1, 1, p[C_H], p[C_W], p[C_C],
                p[C_STACK] != 0};
  const Placement pl{oh, ow, o, p[C_KH] - 1 - p[C_PH], p[C_KW] - 1 - p[C_PW], sh, sw, cv.hc, cv.wc};
  const Requant rq(p[C_SHIFT], p[C_QMIN], p[C_QMAX]);
  const Requant pq(p[C_PSHIFT], p[C_PQMIN], p[C_PQMAX]);
  const PoolGeometry pg{p[C_PKH], p[C_PKW], p[C_PSH], p[C_PSW], p[C_POH], p[C_POW]};
  const int64_t outputs = oh * ow * o, pooled = pg.oh * pg.ow * o, inputs = p[C_H] * p[C_W] * p[C_C];
  const bool relu = p[C_RELU], pooling = p[C_POOL];
  const int64_t mode = p[C_MODE];
  Counts sat;
  parallel_for(p[C_N], threads, [&](int64_t img) {
    AmxScope amx(kernel);
    const CanvasWriter canvas = canvas_for(kernel, cv);
    const uint8_t* b = bits ? bits + img * outputs : nullptr;
    int64_t pool_saturated = 0;
    if (pooling && !pg.overlapping()) {
      // Each position of the convolution's output is in at most one window, so routing adds
      // nothing up: requantize each pooled gradient once (the routed map's other values are 0,
      // which never saturate), then build the convolution's output gradient a row at a time,
      // the window's value at its kept tap and 0 elsewhere, through the ReLU, onto the canvas.
      canvas.clear();
      int16_t* gq = scratch<int16_t>(GRADIENT, pooled + ow * o);
      int16_t* row = gq + pooled;
      const int16_t* gp = g + img * pooled;
      const uint8_t* idx = index + img * pooled;
      const Requant q = pq;
      int64_t count = 0;
      for (int64_t i = 0; i < pooled; ++i) {
        const int64_t v = q.round(gp[i]);
        count += q.saturates(v);
        gq[i] = q.clip(v);
      }
      pool_saturated += count;
      for (int64_t y = 0; y < std::min(oh, pg.oh * pg.sh); ++y) {
        const int64_t py = y / pg.sh, ky = y % pg.sh, cy = pl.top + y * sh;
        if (ky >= pg.kh || cy < 0 || cy >= cv.hc) continue;
        std::memset(row, 0, ow * o * sizeof(int16_t));
        for (int64_t x = 0; x < std::min(ow, pg.ow * pg.sw); ++x) {
          const int64_t px = x / pg.sw, kx = x % pg.sw;
          if (kx >= pg.kw) continue;
          const int64_t w = (py * pg.ow + px) * o;
          route_tap(row + x * o, idx + w, gq + w, static_cast<uint8_t>(ky * pg.kw + kx), o);
        }
        if (relu) {
          relu_backward_run(row, row, b ? b + y * ow * o : nullptr, ow * o, mode);
        }
        if (sw == 1 && pl.left >= 0 && pl.left + ow <= cv.wc) {
          canvas.pixels(cy, pl.left, ow, 0, [row](int64_t i) { return row[i]; });
        } else {
          for (int64_t x = 0; x < ow; ++x) {
            const int64_t cx = pl.left + x * sw;
            if (cx >= 0 && cx < cv.wc) canvas.pixel(cy, cx, x * o, [row](int64_t i) { return row[i]; });
          }
        }
      }
      canvas.finish();
    } else {
      const int16_t* gsrc = g + img * outputs;
      if (pooling) {  // windows overlap: sum what each position receives first
        int64_t* routed = scratch<int64_t>(ROUTED, outputs);
        std::memset(routed, 0, outputs * sizeof(int64_t));
        const int16_t* gp = g + img * pooled;
        const uint8_t* idx = index + img * pooled;
        for (int64_t py = 0; py < pg.oh; ++py)
          for (int64_t px = 0; px < pg.ow; ++px)
            for (int64_t ch = 0; ch < o; ++ch) {
              const int64_t at = (py * pg.ow + px) * o + ch, t = idx[at];
              const int64_t y = py * pg.sh + t / pg.kw, x = px * pg.sw + t % pg.kw;
              routed[(y * ow + x) * o + ch] += gp[at];
            }
        int16_t* grad = scratch<int16_t>(GRADIENT, outputs);
        for (int64_t i = 0; i < outputs; ++i) {
          const int64_t v = pq.round(routed[i]);
          pool_saturated += pq.saturates(v);
          grad[i] = pq.clip(v);
        }
        gsrc = grad;
      }
      if (relu) {
        int16_t* grad = scratch<int16_t>(GRADIENT, outputs);
        relu_backward_run(grad, gsrc, b, outputs, mode);
        gsrc = grad;
      }
      fill_canvas(canvas, pl, [gsrc](int64_t i) { return gsrc[i]; });
    }
    sat.add(1, pool_saturated);
    Requantizer epilogue{rq, nullptr, cv.cout, g_in + img * inputs, false, nullptr, nullptr};
    conv_blocks(kernel, cv, canvas, packed, epilogue);
    sat.add(0, epilogue.saturated);
  });
  counts[0] = sat.v[0].load();
  counts[1] = sat.v[1].load();
  return 0;
}

// A linear layer is a 1 x 1 convolution over a row of images, LINEAR_ROWS images a task.
namespace {
constexpr int64_t LINEAR_ROWS = 32;

template <class Src, class Epilogue>
void linear_rows(int kernel, int64_t rows, int64_t in, int64_t out, const uint8_t* packed, const Src& src,
                 Epilogue&& epilogue) {
  const Conv cv{in, 1, rows, 1, 1, 1, 1, 1, rows, out};
  const CanvasWriter canvas = canvas_for(kernel, cv);
  fill_canvas(canvas, Placement{1, rows, in, 0, 0, 1, 1, 1, rows}, src);
  conv_blocks(kernel, cv, canvas, packed, epilogue);
}
}  // namespace

// x (n, i) int16 -> y (n, o) requantized (counts[0]), ReLU optional with bits (n, o).
XG_API int xg_linear_forward(int kernel, int threads, const int64_t* p, const int16_t* x, const uint8_t* packed,
                             const int64_t* bias, int16_t* y, uint8_t* bits, int64_t* counts) {
  const int64_t n = p[L_N], in = p[L_I], out = p[L_O];
  const Requant rq(p[L_SHIFT], p[L_QMIN], p[L_QMAX]);
  const bool relu = p[L_RELU], keep = p[L_KEEP_BITS];
  Counts sat;
  parallel_for((n + LINEAR_ROWS - 1) / LINEAR_ROWS, threads, [&](int64_t t) {
    AmxScope amx(kernel);
    const int64_t r0 = t * LINEAR_ROWS, rows = std::min(LINEAR_ROWS, n - r0);
    const int16_t* src = x + r0 * in;
    Requantizer epilogue{rq, bias, out, y + r0 * out, relu, relu && keep ? bits + r0 * out : nullptr, nullptr};
    linear_rows(kernel, rows, in, out, packed, [src](int64_t i) { return src[i]; }, epilogue);
    sat.add(0, epilogue.saturated);
  });
  counts[0] = sat.v[0].load();
  return 0;
}

// g (n, o) at the layer's output (at the ReLU's output if one follows) -> g_in (n, i),
// requantized (counts[0]). packed: the weight as an (o, i) matrix.
XG_API int xg_linear_backward(int kernel, int threads, const int64_t* p, const int16_t* g, const uint8_t* bits,
                              const uint8_t* packed, int16_t* g_in, int64_t* counts) {
  const int64_t n = p[L_N], in = p[L_I], out = p[L_O], mode = p[L_MODE];
  const bool relu = p[L_RELU];
  const Requant rq(p[L_SHIFT], p[L_QMIN], p[L_QMAX]);
  Counts sat;
  parallel_for((n + LINEAR_ROWS - 1) / LINEAR_ROWS, threads, [&](int64_t t) {
    AmxScope amx(kernel);
    const int64_t r0 = t * LINEAR_ROWS, rows = std::min(LINEAR_ROWS, n - r0);
    const int16_t* gr = g + r0 * out;
    const uint8_t* b = bits ? bits + r0 * out : nullptr;
    Requantizer epilogue{rq, nullptr, in, g_in + r0 * in, false, nullptr, nullptr};
    if (relu) {
      int16_t* passed = scratch<int16_t>(GRADIENT, rows * out);
      relu_backward_run(passed, gr, b, rows * out, mode);
      gr = passed;
    }
    linear_rows(kernel, rows, out, in, packed, [gr](int64_t i) { return gr[i]; }, epilogue);
    sat.add(0, epilogue.saturated);
  });
  counts[0] = sat.v[0].load();
  return 0;
}

// The exact int64 product a (m, k) @ M (k, n) (+ bias): kernels.linear and linear_transposed.
XG_API int xg_matmul_acc(int kernel, int threads, int64_t m, int64_t k, int64_t n, const int16_t* a,
                         const uint8_t* packed, const int64_t* bias, int64_t* acc) {
  parallel_for((m + LINEAR_ROWS - 1) / LINEAR_ROWS, threads, [&](int64_t t) {
    AmxScope amx(kernel);
    const int64_t r0 = t * LINEAR_ROWS, rows = std::min(LINEAR_ROWS, m - r0);
    const int16_t* src = a + r0 * k;
    int64_t* dst = acc + r0 * n;
    linear_rows(kernel, rows, k, n, packed, [src](int64_t i) { return src[i]; }, WideWriter{bias, n, dst});
  });
  return 0;
}

// Integrated gradients: path image j is image image_of[j] at alpha alpha_of[j] (fraction
// alpha_frac); its input is round((base << alpha_frac) + alpha * (x - base)) requantized by
// (shift, qmin, qmax) (counted in counts[0]). x, base (n, e) int16; out (paths, e) int16.
XG_API int xg_ig_points(int threads, int64_t paths, int64_t e, const int16_t* x, const int16_t* base,
                        const int64_t* image_of, const int64_t* alpha_of, int64_t alpha_frac, int64_t shift,
                        int64_t qmin, int64_t qmax, int16_t* out, int64_t* counts) {
  const Requant rq(shift, qmin, qmax);
  Counts sat;
  parallel_for(paths, threads, [&](int64_t j) {
    const int16_t* __restrict xi = x + image_of[j] * e;
    const int16_t* __restrict bi = base + image_of[j] * e;
    int16_t* __restrict o = out + j * e;
    const int64_t alpha = alpha_of[j];
    int64_t count = 0;
    for (int64_t i = 0; i < e; ++i) {
      const int64_t b = bi[i];
      const int64_t v = rq.round(static_cast<int64_t>(static_cast<uint64_t>(b) << alpha_frac) + alpha * (xi[i] - b));
      count += rq.saturates(v);
      o[i] = rq.clip(v);
    }
    sat.add(0, count);
  });
  counts[0] = sat.v[0].load();
  return 0;
}

// sum[image_of[j]] += g[j] * weight_of[j] for every path image j (int64 sums; g (paths, e) int16).
// Threads take slices of the e values, so two path images of one image never race.
XG_API int xg_ig_accumulate(int threads, int64_t paths, int64_t e, const int16_t* g, const int64_t* image_of,
                            const int64_t* weight_of, int64_t* sum) {
  constexpr int64_t SLICE = 4096;
  parallel_for((e + SLICE - 1) / SLICE, threads, [&](int64_t s) {
    const int64_t i0 = s * SLICE, i1 = std::min(e, i0 + SLICE);
    for (int64_t j = 0; j < paths; ++j) {
      const int16_t* __restrict gj = g + j * e;
      int64_t* __restrict out = sum + image_of[j] * e;
      const int64_t w = weight_of[j];
      for (int64_t i = i0; i < i1; ++i) out[i] += gj[i] * w;
    }
  });
  return 0;
}

// int64 (n, c, hw) -> int16 (n, hw, c): the golden model's inputs to channels last (values of
// at most 16 bits, checked by the caller).
XG_API int xg_to_channels_last(int threads, int64_t n, int64_t c, int64_t hw, const int64_t* src, int16_t* dst) {
  parallel_for(n, threads, [&](int64_t img) {
    const int64_t* s = src + img * c * hw;
    int16_t* d = dst + img * c * hw;
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < hw; ++i) d[i * c + ch] = static_cast<int16_t>(s[ch * hw + i]);
  });
  return 0;
}

// int16 (n, hw, c) -> int64 (n, c, hw): gradients back to the layout of the reference.
XG_API int xg_to_channels_first(int threads, int64_t n, int64_t c, int64_t hw, const int16_t* src, int64_t* dst) {
  parallel_for(n, threads, [&](int64_t img) {
    const int16_t* s = src + img * c * hw;
    int64_t* d = dst + img * c * hw;
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < hw; ++i) d[ch * hw + i] = s[i * c + ch];
  });
  return 0;
}
