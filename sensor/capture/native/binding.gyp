# node-gyp build file for the TPACKET_V3 ring-capture addon (sensor/capture/ring.ts loads it).
# Build: node-gyp rebuild -C sensor/capture/native --nodedir=<node prefix>  (npm's bundled node-gyp,
# headers from the installed node, no download). Needs libpcap-dev (BPF filters are compiled with
# pcap_compile). Output: sensor/capture/native/build/Release/hark_ring.node. Linux only.
{
  "targets": [
    {
      "target_name": "hark_ring",
      "sources": ["hark_ring.cc"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lpcap"]
    }
  ]
}
