// Internal data of ExecutionPlan shared by its two source files (plan.cpp builds it, plan_run.cpp runs it).
// Not part of the API: include only from runtime/plan*.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "runtime/plan.h"

namespace seqrun::runtime::plan_detail {

using backends::Backend;
using backends::DeviceKind;
using backends::Kernel;
using backends::TensorArg;

// Where a value's bytes are. Aliases name their parent slot; only roots have a home.
enum class Home : uint8_t { None, Input, Constant, Output, Arena };

struct Slot {
  std::string name;
  const Value* value = nullptr;  // null for a copy on another device
  DType dtype = DType::undefined;
  Shape shape;
  uint64_t bytes = 0;
  int device = 0;
  int alias_of = -1;  // parent slot when this value shares its bytes
  Home home = Home::None;
  int index = -1;  // input index, output index or arena buffer id
  const void* constant = nullptr;
  int def_step = 0;  // step that writes it (arena buffers)
};

struct Device {
  DeviceKind kind = DeviceKind::CPU;
  Backend* allocator = nullptr;  // first backend of this device kind; null only for an unused host
  unsigned char* arena = nullptr;
  uint64_t arena_bytes = 0;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

struct Step {
  enum class Kind : uint8_t { Kernel, Alias, Copy };
  Kind kind = Kind::Kernel;
  const Node* node = nullptr;
  int device = 0;
  Backend* backend = nullptr;  // kernel's backend, or the device-side backend of a copy
  bool copy_to_host = false;
  std::unique_ptr<Kernel> kernel;
  std::vector<int> in_slots;  // -1: absent
  std::vector<int> out_slots;
  std::vector<TensorArg> in_args;
  std::vector<TensorArg> out_args;
  std::string op, name, label;
};

struct OutputCopy {
  int slot = -1;
  int output = -1;
};

}  // namespace seqrun::runtime::plan_detail

namespace seqrun::runtime {

struct ExecutionPlan::Impl {
  std::vector<plan_detail::Slot> slots;
  std::vector<int> root;  // root slot of every slot
  std::vector<plan_detail::Device> devices;
  std::vector<plan_detail::Step> steps;
  std::vector<plan_detail::OutputCopy> output_copies;
  std::vector<std::pair<backends::Backend*, void*>>
      device_constants;  // uploaded weights, freed with the plan

  int device_index(backends::DeviceKind kind) const {
    for (size_t i = 0; i < devices.size(); ++i) {
      if (devices[i].kind == kind) return static_cast<int>(i);
    }
    return -1;
  }
  int root_of(int s) const {
    while (slots[s].alias_of >= 0) s = slots[s].alias_of;
    return s;
  }
  int device_of(int s) const { return slots[root_of(s)].device; }
};

}  // namespace seqrun::runtime
