// The native fold loop of the text normaliser (hark_fold.cc), registered on the addon's exports
// next to the Hyperscan binding by hark_hyperscan.cc.
#ifndef HARK_FOLD_H_
#define HARK_FOLD_H_

#include <node_api.h>

void HarkRegisterFold(napi_env env, napi_value exports);

#endif  // HARK_FOLD_H_
