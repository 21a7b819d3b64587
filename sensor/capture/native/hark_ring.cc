// Capture stage, native half: one AF_PACKET socket per interface with a TPACKET_V3 receive ring.
// Input: an interface name, ring geometry, an optional BPF filter (compiled by libpcap) and an
// optional hash fanout group. Output: the ring's memory as one external ArrayBuffer, and ONE JS
// call per retired block (its byte offset in that buffer); the block goes back to the kernel when
// the call returns. Kernel counters (PACKET_STATISTICS resets on read) are accumulated here.
// Only sensor/capture/ring.ts calls this; its header documents the contract.

#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <pcap/pcap.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/ethtool.h>
#include <linux/filter.h>
#include <linux/sockios.h>

#include <string>
#include <vector>

namespace {

// Bumped whenever the JS contract changes: ring.ts refuses an addon built from older sources.
constexpr uint32_t ABI_VERSION = 2;
// Room before each frame to put back a VLAN tag the kernel took out of the frame (libpcap does the
// same): 4 bytes, one 802.1Q/802.1ad header.
constexpr int VLAN_TAG_RESERVE = 4;
// tp_frame_size matters little for TPACKET_V3 (frames are packed by length inside a block) but the
// kernel checks block_size % frame_size == 0: 2048 divides every power-of-two block of a page or more.
constexpr uint32_t FRAME_SIZE = 2048;
// libpcap's MAXIMUM_SNAPLEN: the accept return of compiled filters, so a filter never truncates.
constexpr int FILTER_SNAPLEN = 262144;
// Limits checked here as well as in ring.ts (a caller bug must not reach the kernel).
constexpr uint32_t MIN_BLOCK_BYTES = 4096;
constexpr uint32_t MAX_BLOCK_BYTES = 1u << 28;
constexpr uint32_t MAX_RING_BYTES = 1u << 31;
constexpr uint32_t RING_MAGIC = 0x52494e47;  // "RING"

// Data-link types reported to JS (pcap-linktype(7)).
constexpr int DLT_ETHERNET = 1;

struct Ring;

// The uv_poll_t lives apart from Ring: libuv needs it until its close callback, which may come
// after the JS handle (and so the Ring) is gone.
struct PollBox {
  uv_poll_t handle;
};

struct Ring {
  uint32_t magic;
  napi_env env;
  int fd;
  uint8_t* map;
  size_t map_len;
  uint32_t block_bytes;
  uint32_t blocks;
  uint32_t next_block;  // the block the kernel retires next, in ring order
  PollBox* poll;
  napi_ref on_block;     // (blockOffset: number) => void
  napi_ref on_error;     // (code: string, message: string) => void
  napi_ref buffer;       // the external ArrayBuffer over map (detached at close)
  napi_ref self;         // strong ref to the JS handle while open: GC cannot free an open ring
  napi_async_context async_ctx;
  bool open;             // until close()
  bool in_callback;      // inside the onBlock call: close() then leaves unmapping to OnPoll
  bool teardown_pending; // close() ran inside the callback
  bool cleanup_hooked;
  double packets;  // kernel tp_packets, accumulated (includes drops)
  double drops;    // kernel tp_drops, accumulated
  double freezes;  // kernel tp_freeze_q_cnt, accumulated
  unsigned ifindex;
  char name[IF_NAMESIZE];
};

const char* ErrnoCode(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENODEV: return "ENODEV";
    case ENXIO: return "ENXIO";
    case ENETDOWN: return "ENETDOWN";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case EBUSY: return "EBUSY";
    case EADDRINUSE: return "EADDRINUSE";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    default: return "EIO";
  }
}

// Throws an Error with `code` (errno name or an E_* of ours) and returns NULL for the caller to return.
napi_value Throw(napi_env env, const char* code, const std::string& msg) {
  napi_throw_error(env, code, msg.c_str());
  return nullptr;
}

napi_value ThrowErrno(napi_env env, const char* step, const char* ifname, int e) {
  std::string msg = std::string(step) + " on \"" + ifname + "\": " + strerror(e);
  return Throw(env, ErrnoCode(e), msg);
}

napi_value MakeNumber(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

// Reads PACKET_STATISTICS (which the kernel zeroes on every read) into the ring's running totals.
void AccumulateStats(Ring* r) {
  if (r->fd < 0) return;
  struct tpacket_stats_v3 st;
  socklen_t len = sizeof(st);
  memset(&st, 0, sizeof(st));
  if (getsockopt(r->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) {
    r->packets += st.tp_packets;
    r->drops += st.tp_drops;
    r->freezes += st.tp_freeze_q_cnt;
  }
}

void ClosePollBox(PollBox* box) {
  uv_poll_stop(&box->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&box->handle),
           [](uv_handle_t* h) { delete reinterpret_cast<PollBox*>(h); });
}

// Gives the ring memory and socket back (closing the socket also drops the promiscuous
// membership). No N-API calls: also used from the env cleanup hook.
void ReleaseKernelSide(Ring* r) {
  if (r->poll != nullptr) {
    ClosePollBox(r->poll);
    r->poll = nullptr;
  }
  if (r->map != nullptr) {
    munmap(r->map, r->map_len);
    r->map = nullptr;
  }
  if (r->fd >= 0) {
    close(r->fd);
    r->fd = -1;
  }
}

void DeleteRef(napi_env env, napi_ref* ref) {
  if (*ref != nullptr) {
    napi_delete_reference(env, *ref);
    *ref = nullptr;
  }
}

// The N-API half of closing: refs, async context. Runs outside the onBlock call.
void ReleaseJsSide(Ring* r) {
  napi_env env = r->env;
  DeleteRef(env, &r->on_block);
  DeleteRef(env, &r->on_error);
  DeleteRef(env, &r->buffer);
  if (r->async_ctx != nullptr) {
    napi_async_destroy(env, r->async_ctx);
    r->async_ctx = nullptr;
  }
  DeleteRef(env, &r->self);
}

// Env teardown (process exit, worker end) with the ring still open: free the kernel side only.
void CleanupHook(void* arg) {
  Ring* r = static_cast<Ring*>(arg);
  r->cleanup_hooked = false;
  r->open = false;
  ReleaseKernelSide(r);
}

void ReportSocketError(Ring* r, napi_value recv) {
  int err = 0;
  socklen_t len = sizeof(err);
  // Reading SO_ERROR also clears it: without this a pending error (the interface went down or
  // away) keeps the fd readable and the loop would spin.
  if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err == 0) return;
  // The kernel reports ENETDOWN both for a device going down and for one being removed.
  if (err == ENETDOWN && if_nametoindex(r->name) != r->ifindex) err = ENODEV;
  napi_env env = r->env;
  napi_value cb, argv[2], result;
  if (r->on_error == nullptr || napi_get_reference_value(env, r->on_error, &cb) != napi_ok) return;
  std::string msg = std::string("capture socket on \"") + r->name + "\": " + strerror(err);
  napi_create_string_utf8(env, ErrnoCode(err), NAPI_AUTO_LENGTH, &argv[0]);
  napi_create_string_utf8(env, msg.c_str(), NAPI_AUTO_LENGTH, &argv[1]);
  if (napi_make_callback(env, r->async_ctx, recv, cb, 2, argv, &result) == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
}

// Readable: hand every block the kernel has retired to JS, in ring order, one call each.
// status < 0: libuv saw POLLERR (the kernel sets a socket error when the interface goes down or
// away) and has stopped the handle; the error is reported, and polling restarts so capture goes on
// when the interface comes back up (the kernel re-attaches the socket on NETDEV_UP).
void OnPoll(uv_poll_t* handle, int status, int events) {
  Ring* r = static_cast<Ring*>(handle->data);
  if (r == nullptr || !r->open) return;
  napi_env env = r->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv;
  napi_get_global(env, &recv);  // napi_make_callback needs an object receiver
  if (status < 0) {
    ReportSocketError(r, recv);
    if (r->open && r->poll != nullptr) uv_poll_start(&r->poll->handle, UV_READABLE, OnPoll);
  }
  if (!r->open || napi_get_reference_value(env, r->on_block, &cb) != napi_ok || cb == nullptr) {
    napi_close_handle_scope(env, scope);
    return;
  }
  uint32_t handled = 0;
  // At most one lap of the ring per wake-up, so other interfaces and timers get their turn; the
  // fd stays readable (level-triggered) while blocks wait.
  while (r->open && handled < r->blocks) {
    size_t off = static_cast<size_t>(r->next_block) * r->block_bytes;
    struct tpacket_block_desc* bd = reinterpret_cast<struct tpacket_block_desc*>(r->map + off);
    uint32_t st = __atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE);
    if ((st & TP_STATUS_USER) == 0) break;
    napi_value arg, result;
    napi_create_double(env, static_cast<double>(off), &arg);
    r->in_callback = true;
    napi_status s = napi_make_callback(env, r->async_ctx, recv, cb, 1, &arg, &result);
    r->in_callback = false;
    // The block goes back even when the callback threw or closed the ring (the memory is still
    // mapped: close() inside the callback defers unmapping to below).
    __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    r->next_block = r->next_block + 1 == r->blocks ? 0 : r->next_block + 1;
    handled++;
    if (s == napi_pending_exception) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
      break;
    }
  }
  if (r->teardown_pending) {
    r->teardown_pending = false;
    ReleaseKernelSide(r);
    ReleaseJsSide(r);
  } else if (handled == 0 && status >= 0 && r->open) {
    ReportSocketError(r, recv);
  }
  napi_close_handle_scope(env, scope);
}

void FinalizeRing(napi_env env, void* data, void* hint) {
  Ring* r = static_cast<Ring*>(data);
  if (r->cleanup_hooked) {
    napi_remove_env_cleanup_hook(env, CleanupHook, r);
    r->cleanup_hooked = false;
  }
  ReleaseKernelSide(r);
  r->magic = 0;
  delete r;
}

Ring* GetRing(napi_env env, napi_value v) {
  void* p = nullptr;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &p) != napi_ok ||
      p == nullptr || static_cast<Ring*>(p)->magic != RING_MAGIC) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a ring handle");
    return nullptr;
  }
  return static_cast<Ring*>(p);
}

bool GetString(napi_env env, napi_value v, std::string* out) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok) return false;
  out->resize(len);
  std::vector<char> tmp(len + 1);
  if (napi_get_value_string_utf8(env, v, tmp.data(), len + 1, &len) != napi_ok) return false;
  out->assign(tmp.data(), len);
  return true;
}

bool GetU32(napi_env env, napi_value v, uint32_t* out) {
  return napi_get_value_uint32(env, v, out) == napi_ok;
}

// Compiles a tcpdump-syntax filter for Ethernet frames. Returns false with `err` set on a bad filter.
bool CompileFilter(const std::string& expr, std::vector<struct sock_filter>* out, std::string* err) {
  pcap_t* p = pcap_open_dead(DLT_EN10MB, FILTER_SNAPLEN);
  if (p == nullptr) {
    *err = "pcap_open_dead failed";
    return false;
  }
  struct bpf_program prog;
  if (pcap_compile(p, &prog, expr.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
    *err = pcap_geterr(p);
    pcap_close(p);
    return false;
  }
  out->resize(prog.bf_len);
  // struct bpf_insn and the kernel's struct sock_filter have the same layout (code, jt, jf, k).
  for (u_int i = 0; i < prog.bf_len; i++) {
    (*out)[i].code = prog.bf_insns[i].code;
    (*out)[i].jt = prog.bf_insns[i].jt;
    (*out)[i].jf = prog.bf_insns[i].jf;
    (*out)[i].k = prog.bf_insns[i].k;
  }
  pcap_freecode(&prog);
  pcap_close(p);
  return true;
}

// open(name, blockBytes, blocks, frameTimeoutMs, filter, fanoutGroup, onBlock, onError)
//   -> { handle, ring: ArrayBuffer, linkType, ifindex }
// fanoutGroup < 0: no fanout. Errors carry `code`: ENODEV, ENETDOWN, EPERM/EACCES, E_FILTER,
// E_LINK_TYPE, EINVAL, ENOMEM, ...; the message names the step and the interface.
napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 8) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "open needs 8 arguments");
    return nullptr;
  }
  std::string name, filter;
  uint32_t block_bytes = 0, blocks = 0, timeout_ms = 0;
  int32_t fanout = -1;
  napi_valuetype t6, t7;
  napi_typeof(env, argv[6], &t6);
  napi_typeof(env, argv[7], &t7);
  if (!GetString(env, argv[0], &name) || !GetU32(env, argv[1], &block_bytes) || !GetU32(env, argv[2], &blocks) ||
      !GetU32(env, argv[3], &timeout_ms) || !GetString(env, argv[4], &filter) ||
      napi_get_value_int32(env, argv[5], &fanout) != napi_ok || t6 != napi_function || t7 != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "open(name, blockBytes, blocks, frameTimeoutMs, filter, fanoutGroup, onBlock, onError)");
    return nullptr;
  }
  if (name.empty() || name.size() >= IF_NAMESIZE) return Throw(env, "ENODEV", "interface name \"" + name + "\" is not a valid interface name");
  if (block_bytes < MIN_BLOCK_BYTES || block_bytes > MAX_BLOCK_BYTES || (block_bytes & (block_bytes - 1)) != 0 ||
      blocks < 1 || static_cast<uint64_t>(block_bytes) * blocks > MAX_RING_BYTES) {
    return Throw(env, "EINVAL", "ring geometry " + std::to_string(blocks) + " x " + std::to_string(block_bytes) + " bytes is invalid");
  }
  if (fanout > 0xffff) return Throw(env, "EINVAL", "fanout group " + std::to_string(fanout) + " is above 65535");

  // Checks that need no privilege come first, so their errors do not depend on who runs this.
  unsigned ifindex = if_nametoindex(name.c_str());
  if (ifindex == 0) return ThrowErrno(env, "if_nametoindex", name.c_str(), errno == 0 ? ENODEV : errno);
  std::vector<struct sock_filter> code;
  if (!filter.empty()) {
    std::string err;
    if (!CompileFilter(filter, &code, &err)) return Throw(env, "E_FILTER", err);
  }

  int fd = socket(AF_PACKET, SOCK_RAW, 0);  // protocol 0: receives nothing until bind()
  if (fd < 0) return ThrowErrno(env, "socket(AF_PACKET, SOCK_RAW)", name.c_str(), errno);
  auto fail = [&](const char* step, int e) {
    close(fd);
    return ThrowErrno(env, step, name.c_str(), e);
  };

  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  memcpy(ifr.ifr_name, name.c_str(), name.size());
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) return fail("ioctl(SIOCGIFFLAGS)", errno);
  if ((ifr.ifr_flags & IFF_UP) == 0) return fail("interface state", ENETDOWN);
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) != 0) return fail("ioctl(SIOCGIFHWADDR)", errno);
  int hatype = ifr.ifr_hwaddr.sa_family;
  // Ethernet, and loopback (which carries an Ethernet header with zero addresses), as libpcap maps them.
  if (hatype != ARPHRD_ETHER && hatype != ARPHRD_LOOPBACK) {
    close(fd);
    return Throw(env, "E_LINK_TYPE", "interface \"" + name + "\" has hardware type " + std::to_string(hatype) + " (ARPHRD), not Ethernet");
  }

  int version = TPACKET_V3;
  if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) != 0) return fail("setsockopt(PACKET_VERSION, TPACKET_V3)", errno);
  int reserve = VLAN_TAG_RESERVE;
  if (setsockopt(fd, SOL_PACKET, PACKET_RESERVE, &reserve, sizeof(reserve)) != 0) return fail("setsockopt(PACKET_RESERVE)", errno);
  // The filter goes on before bind(): no unfiltered frame can slip into the ring.
  if (!code.empty()) {
    struct sock_fprog fprog;
    fprog.len = static_cast<unsigned short>(code.size());
    fprog.filter = code.data();
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof(fprog)) != 0) return fail("setsockopt(SO_ATTACH_FILTER)", errno);
  }
  struct tpacket_req3 req;
  memset(&req, 0, sizeof(req));
  req.tp_block_size = block_bytes;
  req.tp_block_nr = blocks;
  req.tp_frame_size = FRAME_SIZE;
  req.tp_frame_nr = (block_bytes / FRAME_SIZE) * blocks;
  req.tp_retire_blk_tov = timeout_ms;
  if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) != 0) return fail("setsockopt(PACKET_RX_RING)", errno);
  size_t map_len = static_cast<size_t>(block_bytes) * blocks;
  void* map = mmap(nullptr, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return fail("mmap(ring)", errno);
  auto fail_mapped = [&](const char* step, int e) {
    munmap(map, map_len);
    return fail(step, e);
  };

  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof(sll));
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = static_cast<int>(ifindex);
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&sll), sizeof(sll)) != 0) return fail_mapped("bind", errno);
  // PACKET_MR_PROMISC is a per-socket membership: the kernel drops it when the socket closes,
  // also when this process dies.
  struct packet_mreq mr;
  memset(&mr, 0, sizeof(mr));
  mr.mr_ifindex = static_cast<int>(ifindex);
  mr.mr_type = PACKET_MR_PROMISC;
  if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) != 0) return fail_mapped("setsockopt(PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC)", errno);
  if (fanout >= 0) {
    // Needs a bound socket. Hash mode: the kernel's flow hash is symmetric, so both directions of
    // a flow reach the same socket of the group.
    int arg = (fanout & 0xffff) | (PACKET_FANOUT_HASH << 16);
    if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof(arg)) != 0) return fail_mapped("setsockopt(PACKET_FANOUT)", errno);
  }
  int soerr = 0;
  socklen_t soerr_len = sizeof(soerr);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &soerr_len) == 0 && soerr != 0) return fail_mapped("bind", soerr);

  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return fail_mapped("uv loop", EINVAL);

  Ring* r = new Ring();
  r->magic = RING_MAGIC;
  r->env = env;
  r->fd = fd;
  r->map = static_cast<uint8_t*>(map);
  r->map_len = map_len;
  r->block_bytes = block_bytes;
  r->blocks = blocks;
  r->next_block = 0;
  r->poll = nullptr;
  r->on_block = r->on_error = r->buffer = r->self = nullptr;
  r->async_ctx = nullptr;
  r->open = true;
  r->in_callback = r->teardown_pending = r->cleanup_hooked = false;
  r->packets = r->drops = r->freezes = 0;
  r->ifindex = ifindex;
  memcpy(r->name, name.c_str(), name.size() + 1);

  napi_value handle, ab, result, resource_name;
  if (napi_create_external(env, r, FinalizeRing, nullptr, &handle) != napi_ok) {
    r->magic = 0;
    delete r;
    return fail_mapped("napi_create_external", ENOMEM);
  }
  // From here the handle owns r: errors release the kernel side and leave the rest to its finalizer.
  auto fail_handle = [&](const char* step, int e) {
    r->open = false;
    ReleaseKernelSide(r);
    ReleaseJsSide(r);
    return ThrowErrno(env, step, name.c_str(), e);
  };
  if (napi_create_external_arraybuffer(env, map, map_len, nullptr, nullptr, &ab) != napi_ok) return fail_handle("napi_create_external_arraybuffer", ENOMEM);
  napi_create_reference(env, ab, 1, &r->buffer);
  napi_create_reference(env, argv[6], 1, &r->on_block);
  napi_create_reference(env, argv[7], 1, &r->on_error);
  napi_create_reference(env, handle, 1, &r->self);
  napi_create_string_utf8(env, "hark:capture:ring", NAPI_AUTO_LENGTH, &resource_name);
  napi_value resource;
  napi_create_object(env, &resource);
  if (napi_async_init(env, resource, resource_name, &r->async_ctx) != napi_ok) return fail_handle("napi_async_init", ENOMEM);

  PollBox* box = new PollBox();
  if (uv_poll_init_socket(loop, &box->handle, fd) != 0) {
    delete box;
    return fail_handle("uv_poll_init", EINVAL);
  }
  box->handle.data = r;
  r->poll = box;
  if (uv_poll_start(&box->handle, UV_READABLE, OnPoll) != 0) return fail_handle("uv_poll_start", EINVAL);
  if (napi_add_env_cleanup_hook(env, CleanupHook, r) == napi_ok) r->cleanup_hooked = true;

  napi_create_object(env, &result);
  napi_set_named_property(env, result, "handle", handle);
  napi_set_named_property(env, result, "ring", ab);
  napi_set_named_property(env, result, "linkType", MakeNumber(env, DLT_ETHERNET));
  napi_set_named_property(env, result, "ifindex", MakeNumber(env, ifindex));
  return result;
}

// close(handle): stops delivery, reads the last kernel counters, detaches the ring ArrayBuffer (any
// view of it reads as empty from now on), closes the socket. Idempotent. Safe inside onBlock.
napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  Ring* r = argc >= 1 ? GetRing(env, argv[0]) : nullptr;
  if (r == nullptr) {
    if (argc < 1) napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a ring handle");
    return nullptr;
  }
  if (!r->open) return nullptr;
  AccumulateStats(r);
  r->open = false;
  if (r->poll != nullptr) {
    ClosePollBox(r->poll);
    r->poll = nullptr;
  }
  if (r->cleanup_hooked) {
    napi_remove_env_cleanup_hook(env, CleanupHook, r);
    r->cleanup_hooked = false;
  }
  napi_value ab;
  if (r->buffer != nullptr && napi_get_reference_value(env, r->buffer, &ab) == napi_ok && ab != nullptr) {
    napi_detach_arraybuffer(env, ab);
  }
  if (r->in_callback) {
    r->teardown_pending = true;  // OnPoll finishes once the callback has returned
  } else {
    ReleaseKernelSide(r);
    ReleaseJsSide(r);
  }
  return nullptr;
}

// stats(handle) -> [kernelPackets, kernelDrops, freezes], totals since open (kept after close).
napi_value Stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  Ring* r = argc >= 1 ? GetRing(env, argv[0]) : nullptr;
  if (r == nullptr) return nullptr;
  if (r->open) AccumulateStats(r);
  napi_value arr;
  napi_create_array_with_length(env, 3, &arr);
  napi_set_element(env, arr, 0, MakeNumber(env, r->packets));
  napi_set_element(env, arr, 1, MakeNumber(env, r->drops));
  napi_set_element(env, arr, 2, MakeNumber(env, r->freezes));
  return arr;
}

// ---------- receive offloads (GRO, LRO) ----------
// A NIC or driver that merges TCP segments before capture (generic / large receive offload) hands
// packet sockets frames of up to 64 KiB that were never on the wire. Legacy ethtool commands:
// ETHTOOL_GGRO / SGRO, and the LRO bit of ETHTOOL_GFLAGS / SFLAGS (the kernel maps both onto the
// device's feature bits). Reading needs no privilege; changing needs CAP_NET_ADMIN.

// One ethtool_value command on `name`: 0, or the errno.
int EthtoolValue(const std::string& name, uint32_t cmd, uint32_t* data) {
  if (name.empty() || name.size() >= IFNAMSIZ) return EINVAL;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  struct ethtool_value ev;
  ev.cmd = cmd;
  ev.data = *data;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  memcpy(ifr.ifr_name, name.c_str(), name.size());
  ifr.ifr_data = reinterpret_cast<char*>(&ev);
  const int rc = ioctl(fd, SIOCETHTOOL, &ifr);
  const int e = rc != 0 ? errno : 0;
  close(fd);
  *data = ev.data;
  return e;
}

bool GetName(napi_env env, napi_value v, std::string* out) {
  char buf[IFNAMSIZ + 1];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, buf, sizeof(buf), &len) != napi_ok) return false;
  out->assign(buf, len);
  return true;
}

// getOffloads(name) -> [gro, lro]: 1 on, 0 off, -errno when the driver cannot say (-EOPNOTSUPP...).
napi_value GetOffloads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  std::string name;
  if (argc < 1 || !GetName(env, argv[0], &name)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "getOffloads(name) takes an interface name");
    return nullptr;
  }
  uint32_t gro = 0;
  uint32_t flags = 0;
  const int eg = EthtoolValue(name, ETHTOOL_GGRO, &gro);
  const int ef = EthtoolValue(name, ETHTOOL_GFLAGS, &flags);
  napi_value arr;
  napi_create_array_with_length(env, 2, &arr);
  napi_set_element(env, arr, 0, MakeNumber(env, eg != 0 ? -eg : (gro != 0 ? 1 : 0)));
  napi_set_element(env, arr, 1, MakeNumber(env, ef != 0 ? -ef : ((flags & ETH_FLAG_LRO) != 0 ? 1 : 0)));
  return arr;
}

// setOffload(name, which: 0 GRO | 1 LRO, on: boolean) -> 0, or the errno (EPERM without CAP_NET_ADMIN).
napi_value SetOffload(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  std::string name;
  int32_t which = -1;
  bool on = false;
  if (argc < 3 || !GetName(env, argv[0], &name) || napi_get_value_int32(env, argv[1], &which) != napi_ok ||
      (which != 0 && which != 1) || napi_get_value_bool(env, argv[2], &on) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "setOffload(name, 0 (GRO) | 1 (LRO), on)");
    return nullptr;
  }
  int e;
  if (which == 0) {
    uint32_t v = on ? 1 : 0;
    e = EthtoolValue(name, ETHTOOL_SGRO, &v);
  } else {
    uint32_t flags = 0;
    e = EthtoolValue(name, ETHTOOL_GFLAGS, &flags);
    if (e == 0) {
      flags = on ? (flags | ETH_FLAG_LRO) : (flags & ~static_cast<uint32_t>(ETH_FLAG_LRO));
      e = EthtoolValue(name, ETHTOOL_SFLAGS, &flags);
    }
  }
  return MakeNumber(env, e);
}

void SetNumber(napi_env env, napi_value obj, const char* key, double v) {
  napi_set_named_property(env, obj, key, MakeNumber(env, v));
}

// The kernel structure offsets ring.ts walks blocks with, so it can check its constants at load.
napi_value Layout(napi_env env) {
  napi_value o;
  napi_create_object(env, &o);
  SetNumber(env, o, "blockStatus", offsetof(struct tpacket_block_desc, hdr.bh1.block_status));
  SetNumber(env, o, "blockNumPkts", offsetof(struct tpacket_block_desc, hdr.bh1.num_pkts));
  SetNumber(env, o, "blockFirstPkt", offsetof(struct tpacket_block_desc, hdr.bh1.offset_to_first_pkt));
  SetNumber(env, o, "pktNextOffset", offsetof(struct tpacket3_hdr, tp_next_offset));
  SetNumber(env, o, "pktSec", offsetof(struct tpacket3_hdr, tp_sec));
  SetNumber(env, o, "pktNsec", offsetof(struct tpacket3_hdr, tp_nsec));
  SetNumber(env, o, "pktSnaplen", offsetof(struct tpacket3_hdr, tp_snaplen));
  SetNumber(env, o, "pktLen", offsetof(struct tpacket3_hdr, tp_len));
  SetNumber(env, o, "pktStatus", offsetof(struct tpacket3_hdr, tp_status));
  SetNumber(env, o, "pktMac", offsetof(struct tpacket3_hdr, tp_mac));
  SetNumber(env, o, "pktVlanTci", offsetof(struct tpacket3_hdr, hv1.tp_vlan_tci));
  SetNumber(env, o, "pktVlanTpid", offsetof(struct tpacket3_hdr, hv1.tp_vlan_tpid));
  SetNumber(env, o, "pktHeaderBytes", TPACKET3_HDRLEN);
  SetNumber(env, o, "statusVlanValid", TP_STATUS_VLAN_VALID);
  SetNumber(env, o, "statusVlanTpidValid", TP_STATUS_VLAN_TPID_VALID);
  return o;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", nullptr, Open, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"close", nullptr, Close, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"stats", nullptr, Stats, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"getOffloads", nullptr, GetOffloads, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"setOffload", nullptr, SetOffload, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  napi_set_named_property(env, exports, "layout", Layout(env));
  SetNumber(env, exports, "ABI_VERSION", ABI_VERSION);
  napi_value ver;
  napi_create_string_utf8(env, pcap_lib_version(), NAPI_AUTO_LENGTH, &ver);
  napi_set_named_property(env, exports, "pcapVersion", ver);
  return exports;
}

}  // namespace

NAPI_MODULE_INIT() {
  return Init(env, exports);
}
