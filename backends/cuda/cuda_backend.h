// The CUDA backend: device memory (one cudaMalloc per arena or weight), a stream, cuBLASLt matrix
// products and own kernels for the rest; nodes it has no kernel for fall back to the next backend in the
// plan's list (the CPU).
//
// Plain C++ (no CUDA headers), so code built without CUDA can include it; it is compiled only when the
// build has CUDA (SEQRUN_HAVE_CUDA). Use backends/registry.h to get a backend by name in any build.
//
// Synchronization semantics of the Backend interface on this backend:
// - kernels are enqueued on the backend's one stream and run asynchronously (Kernel::run returns at once);
// - copy_to_device and copy_to_host are enqueued on the same stream and return only when the copy is
//   complete, so the host may reuse (copy_to_device) or read (copy_to_host) its buffer right away, and
//   every kernel enqueued before the copy has finished;
// - synchronize waits for everything enqueued so far;
// - errors raised inside a kernel (a fault, an out-of-range index reported by a kernel) are returned by
//   the next copy or synchronize, naming the node when the kernel reported it.
// The process-wide backend uses device 0; runs of several plans share its stream (correct, serialized).
#pragma once

#include <memory>
#include <string>

#include "backends/backend.h"
#include "ir/status.h"

namespace seqrun::backends {

// The process-wide CUDA backend on device 0, created on first use, or the reason there is none:
// "no CUDA device (<CUDA error text>)".
Result<Backend*> cuda_backend();

// A new CUDA backend on device 0 with its own stream and cuBLASLt handle (for a session that wants its own
// stream); the same error as cuda_backend() when there is no device.
Result<std::unique_ptr<Backend>> make_cuda_backend();

// One line about the device the backend uses: name, compute capability, multiprocessors, memory,
// driver and runtime versions; or the reason there is no device.
std::string cuda_device_description();

}  // namespace seqrun::backends
