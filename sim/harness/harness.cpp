// The board's side of every port of the Verilated accelerator, clocked from C++.
//
// An AXI4-Lite master (one register read or write per call), an AXI4-Stream source (the MM2S
// DMA: one packet per transfer, TLAST on its last beat) and sink (the S2MM DMA: writes beats into
// the caller's buffer until TLAST), each with optional random idle cycles.  Every call advances
// the clock until its transaction completes or a cycle limit passes; the streams progress on
// every cycle, whichever call is clocking.  Port widths come from the Verilated types, so one
// source serves any stream width.  Plain C entry points, loaded through ctypes.
//
// One model evaluation per clock cycle where the build allows it (kOneEvaluation).  The stream
// handshake outputs (TREADY of the input, TVALID/TDATA/TLAST of the output) and the AXI4-Lite
// response channels (BVALID, RVALID, RDATA) are registered in the core: the values settled after
// a rising edge are the ones the next edge samples, so the harness takes its handshake decisions
// from them, sets the inputs and evaluates the rising edge once (Verilator settles the logic of
// the inputs first, then clocks).  AWREADY, WREADY and ARREADY follow their VALID inputs
// combinationally: while an AXI4-Lite request is presented the harness evaluates the falling
// edge too, to read them settled.  The build checks the premise on the generated model (no
// handshake output in its input-combinational logic); a checked mode (harness_check) also
// evaluates the falling edge on every cycle and counts any such output that it changed.
//
// A core with weights in DDR also has an AXI4 read master (m_axi_*): the harness answers it as
// the board's memory would, from regions of the caller's buffers mapped at bus addresses
// (harness_map_ddr, the pynq.allocate buffers of a board), each AR's beats from ``latency``
// cycles after its handshake, in order, at most one a cycle, with optional random idle cycles on
// ARREADY and RVALID; a beat outside every mapped region answers DECERR, as an interconnect does.

#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "harness_top.h"  // written by the build: the Verilated top's header and class
#include "verilated.h"

using Top = HarnessTop;

namespace {

// 32-bit lanes per value of each Verilated port type
template <class T> struct PortLanes { static constexpr int value = (sizeof(T) + 3) / 4; };
template <std::size_t N> struct PortLanes<VlWide<N>> { static constexpr int value = N; };

template <class T> void put_lanes(T& port, const uint32_t* lanes) {
    if constexpr (sizeof(T) > 4) {
        port = static_cast<T>(lanes[0]) | (static_cast<T>(lanes[1]) << 32);
    } else {
        port = static_cast<T>(lanes[0]);
    }
}
template <std::size_t N> void put_lanes(VlWide<N>& port, const uint32_t* lanes) {
    for (std::size_t i = 0; i < N; ++i) port[i] = lanes[i];
}
template <class T> void get_lanes(const T& port, uint32_t* lanes) {
    lanes[0] = static_cast<uint32_t>(port);
    if constexpr (sizeof(T) > 4) lanes[1] = static_cast<uint32_t>(static_cast<uint64_t>(port) >> 32);
}
template <std::size_t N> void get_lanes(const VlWide<N>& port, uint32_t* lanes) {
    for (std::size_t i = 0; i < N; ++i) lanes[i] = port[i];
}

// optional byte-enable ports (a wider stream may carry TKEEP): drive all bytes valid
template <class T, class = void> struct HasInputKeep : std::false_type {};
template <class T> struct HasInputKeep<T, std::void_t<decltype(std::declval<T&>().s_axis_tkeep)>>
    : std::true_type {};
template <class T> void keep_all_bytes(T& top) {
    if constexpr (HasInputKeep<T>::value) top.s_axis_tkeep = ~0u;
}

// The model's record of the clock at its last evaluation (Verilator 5): cleared, the next
// evaluation with the clock high is a rising edge without a separate falling-edge evaluation.
template <class R, class = void> struct HasClockHistory : std::false_type {};
template <class R>
struct HasClockHistory<R, std::void_t<decltype(std::declval<R&>().__Vtrigprevexpr___TOP__aclk__0)>>
    : std::true_type {};
using Root = std::remove_pointer_t<decltype(std::declval<Top&>().rootp)>;
template <class R> void forget_clock(R* root) {
    if constexpr (HasClockHistory<R>::value) root->__Vtrigprevexpr___TOP__aclk__0 = 0;
}

// One evaluation per cycle where the build found the handshake outputs registered (none of them
// in the model's input-combinational logic: HARNESS_REGISTERED_HANDSHAKES, from harness_top.h)
// and the model keeps its clock history as above; otherwise both edges are evaluated.
#ifndef HARNESS_REGISTERED_HANDSHAKES
#define HARNESS_REGISTERED_HANDSHAKES 0
#endif
constexpr bool kOneEvaluation = HARNESS_REGISTERED_HANDSHAKES && HasClockHistory<Root>::value;

// the AXI4 read master of a core with weights in DDR
template <class T, class = void> struct HasWeightPort : std::false_type {};
template <class T> struct HasWeightPort<T, std::void_t<decltype(std::declval<T&>().m_axi_arvalid)>>
    : std::true_type {};
constexpr bool kWeightPort = HasWeightPort<Top>::value;

template <class T, bool = HasWeightPort<T>::value> struct ReadLanes { static constexpr int value = 1; };
template <class T> struct ReadLanes<T, true> {
    static constexpr int value = PortLanes<std::remove_reference_t<decltype(std::declval<T&>().m_axi_rdata)>>::value;
};
constexpr int kReadLanes = ReadLanes<Top>::value;
constexpr uint32_t kDecErr = 3;

constexpr int kInLanes = PortLanes<std::remove_reference_t<decltype(std::declval<Top&>().s_axis_tdata)>>::value;
constexpr int kOutLanes = PortLanes<std::remove_reference_t<decltype(std::declval<Top&>().m_axis_tdata)>>::value;

// result codes shared with the Python loader
enum Result : int { kOk = 0, kTimeout = 1, kOverrun = 2, kBusy = 3 };

struct Harness {
    VerilatedContext context;
    std::unique_ptr<Top> top;
    uint64_t cycle = 0;
    uint64_t rng;
    double input_pause = 0.0, output_pause = 0.0;
    bool output_stalled = false;

    // MM2S: the packet being sent, whole beats, zero-padded
    std::vector<uint32_t> send;
    std::vector<uint64_t> send_cycles;  // the cycle of each beat's handshake (the cycle model's arrivals)
    uint64_t send_beats = 0, sent_beats = 0;
    bool send_valid = false, send_stopped = false;

    bool sending() const { return sent_beats < send_beats && !send_stopped; }

    // S2MM: the caller's buffer, filled beat by beat until TLAST
    uint8_t* recv_buffer = nullptr;
    uint64_t recv_capacity = 0, recv_bytes = 0, received_beats = 0;
    bool receiving = false, recv_overrun = false;

    // AXI4-Lite handshakes sampled at the last rising edge
    bool aw_fire = false, w_fire = false, b_fire = false, ar_fire = false, r_fire = false;
    uint32_t rdata = 0;

    // the memory behind m_axi_* (weights in DDR)
    struct Region { uint64_t address, size; const uint8_t* bytes; };
    struct Beat { uint64_t cycle, address; bool last; };
    std::vector<Region> regions;
    std::deque<Beat> ddr_beats;
    uint64_t ddr_latency = 1, ddr_next_free = 0, ddr_bursts = 0, ddr_beats_sent = 0, ddr_decerr = 0;
    double ddr_ar_pause = 0.0, ddr_r_pause = 0.0;
    bool ddr_presented = false, ddr_silent = false;

    const uint8_t* ddr_bytes(uint64_t address, uint64_t n) const {
        for (const Region& r : regions)
            if (address >= r.address && address - r.address <= r.size && n <= r.size - (address - r.address))
                return r.bytes + (address - r.address);
        return nullptr;
    }

    // (templates on the model's class, so that a model without the port never names its members)
    // before the edge: ARREADY and the R beat (held until taken, as AXI requires)
    template <class T = Top> void drive_memory() {
        if constexpr (HasWeightPort<T>::value) {
            T& t = *top;
            t.m_axi_arready = !draw(ddr_ar_pause);
            if (!ddr_presented && !ddr_beats.empty() && ddr_beats.front().cycle <= cycle && !draw(ddr_r_pause)) {
                const Beat& b = ddr_beats.front();
                constexpr uint64_t n = 4 * kReadLanes;
                uint32_t lanes[kReadLanes] = {};
                const uint8_t* src = ddr_bytes(b.address, n);
                if (src != nullptr) std::memcpy(lanes, src, n);
                else ++ddr_decerr;
                put_lanes(t.m_axi_rdata, lanes);
                t.m_axi_rresp = src != nullptr ? 0 : kDecErr;
                t.m_axi_rlast = b.last;
                t.m_axi_rid = 0;
                t.m_axi_rvalid = 1;
                ddr_presented = true;
            }
        }
    }

    // the AR and R handshakes of a cycle, sampled before its edge and applied after it
    struct MemorySample { bool ar = false, r = false; uint64_t araddr = 0, beats = 0, size = 0; };
    template <class T = Top> MemorySample sample_memory() const {
        MemorySample m;
        if constexpr (HasWeightPort<T>::value) {
            const T& t = *top;
            m.r = t.m_axi_rvalid && t.m_axi_rready;
            m.ar = t.m_axi_arvalid && t.m_axi_arready;
            m.araddr = t.m_axi_araddr;
            m.beats = static_cast<uint64_t>(t.m_axi_arlen) + 1;
            m.size = 1ull << t.m_axi_arsize;
        }
        return m;
    }
    template <class T = Top> void withdraw_beat() {
        if constexpr (HasWeightPort<T>::value) {
            T& t = *top;
            t.m_axi_rvalid = 0;
        }
    }
    void update_memory(const MemorySample& m, uint64_t at) {
        if constexpr (kWeightPort) {
            if (m.r) {
                ddr_beats.pop_front();
                ++ddr_beats_sent;
                ddr_presented = false;
                withdraw_beat();
            }
            if (m.ar && !ddr_silent) {
                uint64_t first = at + ddr_latency;
                if (first < ddr_next_free) first = ddr_next_free;
                for (uint64_t i = 0; i < m.beats; ++i)
                    ddr_beats.push_back(Beat{first + i, m.araddr + i * m.size, i + 1 == m.beats});
                ddr_next_free = first + m.beats;
                ++ddr_bursts;
            }
        }
    }

    explicit Harness(uint64_t seed) : top(new Top{&context}), rng(seed * 0x9E3779B97F4A7C15ull + 1) {
        keep_all_bytes(*top);
        top->aclk = 0;
        top->aresetn = 0;
        top->eval();
    }

    ~Harness() { top->final(); }

    bool draw(double probability) {  // splitmix64
        if (probability <= 0.0) return false;
        uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        return static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0) < probability;
    }

    // Registered outputs the handshakes read (checked mode: unchanged by the falling edge)
    struct Registered {
        bool s_ready, m_valid, m_last, b_valid, r_valid;
        uint32_t r_data;
        uint32_t m_data[kOutLanes];
        bool operator==(const Registered& o) const {
            return s_ready == o.s_ready && m_valid == o.m_valid && m_last == o.m_last && b_valid == o.b_valid &&
                   r_valid == o.r_valid && r_data == o.r_data && std::memcmp(m_data, o.m_data, sizeof(m_data)) == 0;
        }
    };
    Registered registered() const {
        Registered r{};
        r.s_ready = top->s_axis_tready;
        r.m_valid = top->m_axis_tvalid;
        r.m_last = top->m_axis_tlast;
        r.b_valid = top->s_axi_bvalid;
        r.r_valid = top->s_axi_rvalid;
        r.r_data = top->s_axi_rdata;
        get_lanes(top->m_axis_tdata, r.m_data);
        return r;
    }
    bool check = false;
    uint64_t unsettled = 0, first_unsettled = 0;

    // One clock cycle: drive the streams, take the handshakes from the settled outputs, one
    // evaluation at the rising edge (two while an AXI4-Lite request is presented), update.
    void tick() {
        if (!send_valid && sending() && !draw(input_pause)) {
            put_lanes(top->s_axis_tdata, &send[sent_beats * kInLanes]);
            top->s_axis_tlast = sent_beats + 1 == send_beats;
            send_valid = true;
        }
        top->s_axis_tvalid = send_valid;
        top->m_axis_tready = receiving && !output_stalled && !draw(output_pause);
        drive_memory();
        const bool lite_request = top->s_axi_awvalid | top->s_axi_wvalid | top->s_axi_arvalid;
        if (!kOneEvaluation || lite_request || check) {
            Registered before;
            if (check) before = registered();
            top->aclk = 0;
            top->eval();
            if (kOneEvaluation && check && !(registered() == before) && unsettled++ == 0) first_unsettled = cycle;
        } else {
            forget_clock(top->rootp);
        }
        const bool in_fire = send_valid && top->s_axis_tready;
        const bool out_fire = top->m_axis_tvalid && top->m_axis_tready;
        aw_fire = top->s_axi_awvalid && top->s_axi_awready;
        w_fire = top->s_axi_wvalid && top->s_axi_wready;
        b_fire = top->s_axi_bvalid && top->s_axi_bready;
        ar_fire = top->s_axi_arvalid && top->s_axi_arready;
        r_fire = top->s_axi_rvalid && top->s_axi_rready;
        rdata = top->s_axi_rdata;
        if (out_fire) take_beat();  // as presented before the edge
        const MemorySample memory = sample_memory();
        top->aclk = 1;
        top->eval();
        context.timeInc(1);
        ++cycle;
        if (in_fire) {
            send_valid = false;
            send_cycles.push_back(cycle - 1);
            ++sent_beats;
        }
        update_memory(memory, cycle - 1);
    }

    // the output beat of this cycle's handshake into the caller's buffer
    void take_beat() {
        uint32_t beat[kOutLanes];
        get_lanes(top->m_axis_tdata, beat);
        ++received_beats;
        const uint64_t room = recv_capacity - recv_bytes;
        const uint64_t take = room < sizeof(beat) ? room : sizeof(beat);
        if (take < sizeof(beat)) recv_overrun = true;
        std::memcpy(recv_buffer + recv_bytes, beat, take);
        recv_bytes += take;
        if (top->m_axis_tlast) receiving = false;
    }

    bool run_until(uint64_t limit, bool (*done)(const Harness&)) {
        for (uint64_t n = 0; !done(*this); ++n) {
            if (n >= limit) return false;
            tick();
        }
        return true;
    }
};

}  // namespace

extern "C" {

int harness_input_lanes() { return kInLanes; }
int harness_output_lanes() { return kOutLanes; }

void* harness_create(uint64_t seed) { return new Harness(seed); }
void harness_destroy(void* h) { delete static_cast<Harness*>(h); }

void harness_configure(void* handle, double input_pause, double output_pause, int output_stalled) {
    auto* h = static_cast<Harness*>(handle);
    h->input_pause = input_pause;
    h->output_pause = output_pause;
    h->output_stalled = output_stalled != 0;
}

uint64_t harness_cycle(void* h) { return static_cast<Harness*>(h)->cycle; }

// Checked mode: evaluate the falling edge on every cycle and count the cycles where it changed a
// registered output the handshakes read (out[0]; out[1]: the first such cycle).
void harness_check(void* handle, int on) { static_cast<Harness*>(handle)->check = on != 0; }

void harness_unsettled(void* handle, uint64_t* out) {
    auto* h = static_cast<Harness*>(handle);
    out[0] = h->unsettled;
    out[1] = h->first_unsettled;
}

void harness_counters(void* handle, uint64_t* out) {
    auto* h = static_cast<Harness*>(handle);
    out[0] = h->sent_beats;
    out[1] = h->send_beats;
    out[2] = h->received_beats;
    out[3] = h->recv_bytes;
}

// The cycles of the current (or last) packet's accepted beats, at most ``capacity`` into ``out``;
// returns how many beats were accepted.
uint64_t harness_send_cycles(void* handle, uint64_t* out, uint64_t capacity) {
    auto* h = static_cast<Harness*>(handle);
    const uint64_t n = h->send_cycles.size();
    if (out != nullptr && capacity != 0) std::memcpy(out, h->send_cycles.data(), sizeof(uint64_t) * (n < capacity ? n : capacity));
    return n;
}

int harness_has_weight_port() { return kWeightPort; }
int harness_weight_port_lanes() { return kWeightPort ? kReadLanes : 0; }

// Weights in DDR: ``nbytes`` of ``bytes`` (kept alive by the caller) answer reads at bus
// ``address`` on; a later region at the same address replaces it.
void harness_map_ddr(void* handle, uint64_t address, const uint8_t* bytes, uint64_t nbytes) {
    auto* h = static_cast<Harness*>(handle);
    for (auto& r : h->regions)
        if (r.address == address) {
            r = {address, nbytes, bytes};
            return;
        }
    h->regions.push_back({address, nbytes, bytes});
}

void harness_unmap_ddr(void* handle) { static_cast<Harness*>(handle)->regions.clear(); }

// The memory's timing: cycles from an AR handshake to its first beat, the chance of an idle cycle
// on ARREADY and on RVALID; ``silent``: take ARs and never answer (a hung port).
void harness_configure_ddr(void* handle, uint64_t latency, double ar_pause, double r_pause, int silent) {
    auto* h = static_cast<Harness*>(handle);
    h->ddr_latency = latency < 1 ? 1 : latency;
    h->ddr_ar_pause = ar_pause;
    h->ddr_r_pause = r_pause;
    h->ddr_silent = silent != 0;
}

// out: bursts accepted, beats sent, DECERR beats, beats still owed
void harness_ddr_counters(void* handle, uint64_t* out) {
    auto* h = static_cast<Harness*>(handle);
    out[0] = h->ddr_bursts;
    out[1] = h->ddr_beats_sent;
    out[2] = h->ddr_decerr;
    out[3] = h->ddr_beats.size();
}

// The port's reset (the PL's, after a read timeout): beats still owed are forgotten.
void harness_reset_ddr(void* handle) {
    auto* h = static_cast<Harness*>(handle);
    h->ddr_beats.clear();
    h->ddr_presented = false;
    h->ddr_next_free = 0;
    h->withdraw_beat();
}

void harness_reset(void* handle, uint64_t low_cycles, uint64_t high_cycles) {
    auto* h = static_cast<Harness*>(handle);
    h->top->aresetn = 0;
    for (uint64_t n = 0; n < low_cycles; ++n) h->tick();
    h->top->aresetn = 1;
    for (uint64_t n = 0; n < high_cycles; ++n) h->tick();
}

void harness_run(void* handle, uint64_t cycles) {
    auto* h = static_cast<Harness*>(handle);
    for (uint64_t n = 0; n < cycles; ++n) h->tick();
}

// AXI4-Lite write: address and data presented together, then the response.
int harness_write(void* handle, uint32_t address, uint32_t value, uint64_t limit) {
    auto* h = static_cast<Harness*>(handle);
    Top& t = *h->top;
    t.s_axi_awaddr = address;
    t.s_axi_wdata = value;
    t.s_axi_wstrb = 0xF;
    t.s_axi_awvalid = 1;
    t.s_axi_wvalid = 1;
    t.s_axi_bready = 1;
    bool address_done = false, data_done = false;
    int result = kTimeout;
    for (uint64_t n = 0; n < limit; ++n) {
        h->tick();
        if (address_done && data_done && h->b_fire) {
            result = kOk;
            break;
        }
        address_done |= h->aw_fire;
        data_done |= h->w_fire;
        if (address_done) t.s_axi_awvalid = 0;
        if (data_done) t.s_axi_wvalid = 0;
    }
    t.s_axi_awvalid = 0;
    t.s_axi_wvalid = 0;
    t.s_axi_bready = 0;
    return result;
}

// AXI4-Lite read of one 32-bit register.
int harness_read(void* handle, uint32_t address, uint32_t* value, uint64_t limit) {
    auto* h = static_cast<Harness*>(handle);
    Top& t = *h->top;
    t.s_axi_araddr = address;
    t.s_axi_arvalid = 1;
    t.s_axi_rready = 1;
    bool address_done = false;
    int result = kTimeout;
    for (uint64_t n = 0; n < limit; ++n) {
        h->tick();
        if (address_done && h->r_fire) {
            *value = h->rdata;
            result = kOk;
            break;
        }
        address_done |= h->ar_fire;
        if (address_done) t.s_axi_arvalid = 0;
    }
    t.s_axi_arvalid = 0;
    t.s_axi_rready = 0;
    return result;
}

// MM2S: queue ``nbytes`` of ``data`` as one packet; it streams while the clock runs.
int harness_send(void* handle, const uint8_t* data, uint64_t nbytes) {
    auto* h = static_cast<Harness*>(handle);
    if (h->sending()) return kBusy;
    const uint64_t beat_bytes = 4 * kInLanes;
    h->send_beats = (nbytes + beat_bytes - 1) / beat_bytes;
    h->send.assign(h->send_beats * kInLanes, 0);
    std::memcpy(h->send.data(), data, nbytes);
    h->sent_beats = 0;
    h->send_cycles.clear();
    h->send_valid = false;
    h->send_stopped = false;
    return kOk;
}

// S2MM: arm a receive into ``buffer`` (``capacity`` bytes); complete at TLAST.
int harness_receive(void* handle, uint8_t* buffer, uint64_t capacity) {
    auto* h = static_cast<Harness*>(handle);
    if (h->receiving) return kBusy;
    h->recv_buffer = buffer;
    h->recv_capacity = capacity;
    h->recv_bytes = 0;
    h->received_beats = 0;
    h->recv_overrun = false;
    h->receiving = true;
    return kOk;
}

int harness_wait_send(void* handle, uint64_t limit) {
    auto* h = static_cast<Harness*>(handle);
    const bool done = h->run_until(limit, [](const Harness& s) { return !s.sending(); });
    return done ? kOk : kTimeout;
}

int harness_wait_receive(void* handle, uint64_t limit) {
    auto* h = static_cast<Harness*>(handle);
    const bool done = h->run_until(limit, [](const Harness& s) { return !s.receiving; });
    if (!done) return kTimeout;
    return h->recv_overrun ? kOverrun : kOk;
}

// Abandon the open transfers (the DMA's reset): the source drops TVALID, the sink stops
// accepting; the counters keep the abandoned packet's progress for messages.
void harness_stop(void* handle, int send, int receive) {
    auto* h = static_cast<Harness*>(handle);
    if (send) {
        h->send_stopped = true;
        h->send_valid = false;
        h->top->s_axis_tvalid = 0;
    }
    if (receive) {
        h->receiving = false;
        h->recv_buffer = nullptr;
        h->recv_capacity = 0;
    }
}

}  // extern "C"
