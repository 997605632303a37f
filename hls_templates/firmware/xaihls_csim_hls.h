// C-simulation stand-ins for hls::vector and hls::stream_of_blocks (Vitis HLS 2022.1+ headers
// hls_vector.h and hls_streamofblocks.h), for g++ with ap_types headers that lack them
// (hls4ml's copy). Never synthesized: under Vitis HLS the real headers exist and
// xaihls_types.h includes those instead.
//
// They model what the engine uses, as Vitis's own C-simulation models do: a vector is N
// elements side by side; a stream of blocks is an unbounded queue (C-simulation runs the
// processes of a dataflow region one after the other, so the producer runs ahead of its
// consumer by the whole job). Reading an empty stream or leaving blocks behind is recorded
// (xaihls::csim_channel_fault, declared by xaihls_types.h) instead of hanging or leaking: it
// means the units disagree on how many tiles a job has, which would deadlock the hardware.
#ifndef XAIHLS_CSIM_HLS_H_
#define XAIHLS_CSIM_HLS_H_

#ifdef __SYNTHESIS__
#error "xaihls_csim_hls.h is a C-simulation model; synthesize with Vitis HLS's hls_vector.h and hls_streamofblocks.h"
#endif

#include <cstddef>
#include <deque>
#include <vector>

namespace hls {

template <typename T, size_t N>
class vector {
  public:
    T &operator[](size_t i) { return data_[i]; }
    const T &operator[](size_t i) const { return data_[i]; }

  private:
    T data_[N];
};

// One block in flight (the C-simulation's storage of a ping-pong buffer). Released blocks are
// kept for the next write lock of their type, as the hardware reuses its two buffers.
template <typename B>
struct csim_block {
    B data;

    static std::vector<csim_block *> &spare() {
        static std::vector<csim_block *> blocks;
        return blocks;
    }
    static csim_block *take() {
        if (spare().empty()) return new csim_block;
        csim_block *b = spare().back();
        spare().pop_back();
        return b;
    }
    static void give(csim_block *b) { spare().push_back(b); }
};

template <typename B, int DEPTH = 2>
class stream_of_blocks {
  public:
    stream_of_blocks() {}
    ~stream_of_blocks() {
        if (!blocks.empty()) xaihls::csim_channel_fault() = true;
        for (csim_block<B> *b : blocks) csim_block<B>::give(b);
    }
    bool empty() const { return blocks.empty(); }
    bool full() const { return false; }

    std::deque<csim_block<B> *> blocks;  // the locks' queue; not part of Vitis's interface

  private:
    stream_of_blocks(const stream_of_blocks &);
    stream_of_blocks &operator=(const stream_of_blocks &);
};

// Acquires the oldest block; frees it when it goes out of scope.
template <typename B>
class read_lock {
  public:
    template <int D>
    explicit read_lock(stream_of_blocks<B, D> &s) : block_(take(s.blocks)) {}
    ~read_lock() { csim_block<B>::give(block_); }
    operator B &() { return block_->data; }

  private:
    static csim_block<B> *take(std::deque<csim_block<B> *> &q) {
        if (q.empty()) {
            xaihls::csim_channel_fault() = true;
            return csim_block<B>::take();
        }
        csim_block<B> *b = q.front();
        q.pop_front();
        return b;
    }
    read_lock(const read_lock &);
    read_lock &operator=(const read_lock &);
    csim_block<B> *block_;
};

// Acquires a new block; hands it to the consumer when it goes out of scope.
template <typename B>
class write_lock {
  public:
    template <int D>
    explicit write_lock(stream_of_blocks<B, D> &s) : block_(csim_block<B>::take()), queue_(s.blocks) {}
    ~write_lock() { queue_.push_back(block_); }
    operator B &() { return block_->data; }

  private:
    write_lock(const write_lock &);
    write_lock &operator=(const write_lock &);
    csim_block<B> *block_;
    std::deque<csim_block<B> *> &queue_;
};

}  // namespace hls

#endif
