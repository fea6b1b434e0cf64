// What the C API's source files share: the structs behind the opaque handles of runtime/seqrun.h and the
// error plumbing (a failing call stores its message for the calling thread; `guarded` turns any exception
// into a status). Not installed: C and C++ users see only the opaque handles.
#pragma once

#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "ir/tensor.h"
#include "runtime/model.h"
#include "runtime/seqrun.h"
#include "runtime/session.h"

namespace seqrun::c_api {

// One graph input or output as seqrun_value_info describes it; the pointers handed out point in here.
struct ValueInfoStorage {
  std::string name;
  seqrun_dtype dtype = SEQRUN_DTYPE_UNDEFINED;
  int rank = -1;
  std::vector<int64_t> shape;
  std::vector<std::string> dim_name_strings;
  std::vector<const char*> dim_names;
};

}  // namespace seqrun::c_api

struct seqrun_tensor {
  seqrun::Tensor tensor;
};

struct seqrun_model {
  std::shared_ptr<const seqrun::runtime::Model> model;
  std::vector<seqrun::c_api::ValueInfoStorage> inputs;
  std::vector<seqrun::c_api::ValueInfoStorage> outputs;
};

// Shared, so a decoder made from the session keeps it alive after seqrun_session_free.
struct seqrun_session {
  std::shared_ptr<seqrun::runtime::Session> session;
};

namespace seqrun::c_api {

// Stores "<function>: <message>" as the calling thread's last error and returns `status`.
seqrun_status fail(seqrun_status status, const char* function, const std::string& message) noexcept;

// "'a', 'b'" (or "none"), for messages that list what exists.
std::string join_names(const std::vector<std::string>& names);

// Runs `body` (which returns a seqrun_status) and turns any exception into a status and a message.
template <typename Body>
seqrun_status guarded(const char* function, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return fail(SEQRUN_ERROR_OUT_OF_MEMORY, function, "out of memory");
  } catch (const std::exception& e) {
    return fail(SEQRUN_ERROR_INTERNAL, function, std::string("internal error: ") + e.what());
  } catch (...) {
    return fail(SEQRUN_ERROR_INTERNAL, function, "internal error: unknown exception");
  }
}

template <typename T>
void clear_out(T** out) {
  if (out != nullptr) *out = nullptr;
}

}  // namespace seqrun::c_api
