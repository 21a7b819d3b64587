# node-gyp build file for the Hyperscan phrase-matching addon (sensor/match/hyperscan.ts loads it),
# which also carries the text normaliser's native ASCII fold loop (hark_fold.cc).
# Build: node-gyp rebuild -C sensor/match/native   (npm's bundled node-gyp; nodedir=/usr, no download)
# Needs the Debian package libhyperscan-dev (headers in /usr/include/hs, libhs.so). Output lands in
# sensor/match/native/build/Release/hark_hyperscan.node.
{
  "targets": [
    {
      "target_name": "hark_hyperscan",
      "sources": ["hark_hyperscan.cc", "hark_fold.cc"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lhs"]
    }
  ]
}
