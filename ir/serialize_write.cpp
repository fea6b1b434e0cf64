// Writing .seqrun model files: the graph as a FlatBuffer, constants in a 64-byte-aligned blob.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <unordered_map>
#include <vector>

#include "ir/seqrun_generated.h"
#include "ir/serialize.h"
#include "ir/verify.h"

namespace seqrun {

namespace {

constexpr uint64_t kHeaderBytes = 16;
constexpr uint64_t kBlobAlignment = 64;
constexpr int kMaxGraphNesting = 64;

uint64_t align_to_blob(uint64_t n) {
  return (n + kBlobAlignment - 1) / kBlobAlignment * kBlobAlignment;
}

// Receives the file's bytes in order; returns false when writing failed.
using ByteSink = std::function<bool(const void* data, size_t bytes)>;

// Serializes one Graph (with its nested graphs) into a FlatBuffer and lays out the weight blob.
//
// Graphs are written depth-first. Every constant and tensor attribute, nested graphs included,
// takes the next slot of the model's one tensor table; slot k's bytes go to blob offset
// `blob_[k].offset_bytes`, each rounded up to 64 bytes. The writer does not deduplicate, so no two
// tensors ever share bytes (the loader rejects overlapping tensors). Only orphaned intermediates
// (no producer, no use, not an output: leftovers of erase_node) are dropped; anything else the file
// cannot represent is an error.
class ModelWriter {
 public:
  Status build(const Graph& graph, const SaveOptions& options) {
    SEQRUN_ASSIGN(auto root_graph, write_graph(graph, 0));
    std::vector<flatbuffers::Offset<fb::Tensor>> tensors;
    for (const BlobTensor& t : blob_) {
      std::vector<int64_t> shape = t.tensor.shape();
      tensors.push_back(fb::CreateTensor(fbb_, fbb_.CreateString(t.name),
                                         static_cast<uint8_t>(t.tensor.dtype()), fbb_.CreateVector(shape),
                                         t.offset_bytes, t.size_bytes));
    }
    std::vector<flatbuffers::Offset<fb::KeyValue>> metadata;
    for (const auto& [key, value] : options.metadata) {
      metadata.push_back(fb::CreateKeyValue(fbb_, fbb_.CreateString(key), fbb_.CreateString(value)));
    }
    auto model = fb::CreateModel(fbb_, fbb_.CreateString(options.producer), fbb_.CreateVector(metadata),
                                 root_graph, fbb_.CreateVector(tensors));
    fb::FinishModelBuffer(fbb_, model);
    return Status::ok();
  }

  // Header, flatbuffer, padding, then every tensor at blob_start + offset.
  bool emit(const ByteSink& sink) const {
    const uint64_t flatbuffer_bytes = fbb_.GetSize();
    uint8_t header[kHeaderBytes];
    std::memcpy(header, kFileMagic, 4);
    for (int i = 0; i < 4; ++i) header[4 + i] = static_cast<uint8_t>(kFormatVersion >> (8 * i));
    for (int i = 0; i < 8; ++i) header[8 + i] = static_cast<uint8_t>(flatbuffer_bytes >> (8 * i));
    if (!sink(header, sizeof(header))) return false;
    if (!sink(fbb_.GetBufferPointer(), flatbuffer_bytes)) return false;
    uint64_t written = kHeaderBytes + flatbuffer_bytes;
    const uint64_t blob_start = align_to_blob(written);
    static const uint8_t zeros[kBlobAlignment] = {};
    if (!sink(zeros, blob_start - written)) return false;
    written = blob_start;
    for (const BlobTensor& t : blob_) {
      uint64_t padding = blob_start + t.offset_bytes - written;
      if (!sink(zeros, padding)) return false;
      if (t.size_bytes > 0 && !sink(t.tensor.raw(), t.size_bytes)) return false;
      written = blob_start + t.offset_bytes + t.size_bytes;
    }
    return true;
  }

  uint64_t file_bytes() const {
    uint64_t end = align_to_blob(kHeaderBytes + fbb_.GetSize());
    if (!blob_.empty()) end += blob_.back().offset_bytes + blob_.back().size_bytes;
    return end;
  }

 private:
  struct BlobTensor {
    std::string name;
    Tensor tensor;
    uint64_t offset_bytes;
    uint64_t size_bytes;
  };

  Result<int32_t> add_tensor(const std::string& name, const Tensor& tensor) {
    if (!tensor.defined()) return make_error("tensor '{}' has no data", name);
    uint64_t offset = align_to_blob(blob_bytes_);
    uint64_t size = tensor.nbytes();
    blob_.push_back({name, tensor, offset, size});
    blob_bytes_ = offset + size;
    return static_cast<int32_t>(blob_.size() - 1);
  }

  flatbuffers::Offset<fb::TensorType> write_type(const TensorType& type) {
    std::vector<flatbuffers::Offset<fb::Dim>> dims;
    for (const Dim& d : type.dims()) {
      if (d.is_static()) {
        dims.push_back(fb::CreateDim(fbb_, d.value()));
      } else if (d.is_symbol()) {
        dims.push_back(fb::CreateDim(fbb_, -1, fbb_.CreateString(d.symbol_name())));
      } else {
        dims.push_back(fb::CreateDim(fbb_));
      }
    }
    auto dims_vector = type.has_rank() ? fbb_.CreateVector(dims) : 0;
    return fb::CreateTensorType(fbb_, static_cast<uint8_t>(type.dtype()), type.has_rank(), dims_vector);
  }

  Result<flatbuffers::Offset<fb::Attribute>> write_attribute(const Node& node, const std::string& key,
                                                             const Attribute& a, int depth) {
    auto name = fbb_.CreateString(key);
    auto type = static_cast<uint8_t>(a.type());
    switch (a.type()) {
      case AttrType::Int:
        return fb::CreateAttribute(fbb_, name, type, a.i());
      case AttrType::Float:
        return fb::CreateAttribute(fbb_, name, type, 0, a.f());
      case AttrType::String: {
        auto s = fbb_.CreateString(a.s());
        return fb::CreateAttribute(fbb_, name, type, 0, 0.0f, s);
      }
      case AttrType::Ints: {
        auto ints = fbb_.CreateVector(a.ints());
        return fb::CreateAttribute(fbb_, name, type, 0, 0.0f, 0, ints);
      }
      case AttrType::Floats: {
        auto floats = fbb_.CreateVector(a.floats());
        return fb::CreateAttribute(fbb_, name, type, 0, 0.0f, 0, 0, floats);
      }
      case AttrType::Strings: {
        auto strings = fbb_.CreateVectorOfStrings(a.strings());
        return fb::CreateAttribute(fbb_, name, type, 0, 0.0f, 0, 0, 0, strings);
      }
      case AttrType::Tensor: {
        std::string owner = node.name().empty() ? node.op() : node.name();
        SEQRUN_ASSIGN(int32_t index, add_tensor(owner + "." + key, a.tensor()));
        return fb::CreateAttribute(fbb_, name, type, 0, 0.0f, 0, 0, 0, 0, index);
      }
      case AttrType::Graph: {
        if (a.graph() == nullptr)
          return make_error("{}: attribute '{}' holds no graph", node.describe(), key);
        auto body = write_graph(*a.graph(), depth + 1);
        if (!body.is_ok()) return body.status().with_context(node.describe() + " attribute '" + key + "'");
        return fb::CreateAttribute(fbb_, name, type, 0, 0.0f, 0, 0, 0, 0, -1, body.value());
      }
    }
    return make_error("{}: attribute '{}' has an unknown type", node.describe(), key);
  }

  Result<flatbuffers::Offset<fb::Graph>> write_graph(const Graph& g, int depth) {
    if (depth > kMaxGraphNesting) {
      return make_error("graph '{}': nested graphs deeper than {} levels", g.name(), kMaxGraphNesting);
    }
    std::unordered_map<const Value*, int32_t> index_of;
    std::vector<flatbuffers::Offset<fb::Value>> values;
    for (const Value* v : g.values()) {
      bool orphan = v->role() == Value::Role::Intermediate && v->producer() == nullptr && v->uses().empty() &&
                    !v->is_graph_output();
      if (orphan) continue;
      int32_t tensor = -1;
      if (v->is_constant()) {
        SEQRUN_ASSIGN(tensor, add_tensor(v->name(), v->constant()));
      }
      auto name = fbb_.CreateString(v->name());
      auto type = write_type(v->type());
      index_of[v] = static_cast<int32_t>(values.size());
      values.push_back(fb::CreateValue(fbb_, name, type, static_cast<uint8_t>(v->role()), tensor));
    }
    auto indices = [&](const std::vector<Value*>& list,
                       const std::string& what) -> Result<std::vector<int32_t>> {
      std::vector<int32_t> out;
      for (const Value* v : list) {
        if (v == nullptr) {
          out.push_back(-1);
          continue;
        }
        auto it = index_of.find(v);
        if (it == index_of.end()) {
          return make_error("graph '{}': {} '{}' is not a value of this graph", g.name(), what, v->name());
        }
        out.push_back(it->second);
      }
      return out;
    };
    std::vector<flatbuffers::Offset<fb::Node>> nodes;
    for (const Node* n : g.nodes()) {
      SEQRUN_ASSIGN(auto inputs, indices(n->inputs(), n->describe() + " input"));
      SEQRUN_ASSIGN(auto outputs, indices(n->outputs(), n->describe() + " output"));
      std::vector<flatbuffers::Offset<fb::Attribute>> attrs;
      for (const auto& [key, a] : n->attrs()) {
        SEQRUN_ASSIGN(auto attr, write_attribute(*n, key, a, depth));
        attrs.push_back(attr);
      }
      auto op = fbb_.CreateString(n->op());
      auto name = fbb_.CreateString(n->name());
      auto in_vec = fbb_.CreateVector(inputs);
      auto out_vec = fbb_.CreateVector(outputs);
      auto attr_vec = fbb_.CreateVector(attrs);
      nodes.push_back(fb::CreateNode(fbb_, op, name, in_vec, out_vec, attr_vec, n->num_captures()));
    }
    SEQRUN_ASSIGN(auto inputs, indices(g.inputs(), "input"));
    SEQRUN_ASSIGN(auto outputs, indices(g.outputs(), "output"));
    SEQRUN_ASSIGN(auto captures, indices(g.captures(), "capture"));
    for (int32_t o : outputs) {
      if (o < 0) return make_error("graph '{}': an output is null", g.name());
    }
    auto name = fbb_.CreateString(g.name());
    auto value_vec = fbb_.CreateVector(values);
    auto node_vec = fbb_.CreateVector(nodes);
    auto in_vec = fbb_.CreateVector(inputs);
    auto out_vec = fbb_.CreateVector(outputs);
    auto cap_vec = fbb_.CreateVector(captures);
    return fb::CreateGraph(fbb_, name, value_vec, node_vec, in_vec, out_vec, cap_vec);
  }

  flatbuffers::FlatBufferBuilder fbb_{4096};
  std::vector<BlobTensor> blob_;
  uint64_t blob_bytes_ = 0;
};

}  // namespace

std::string serialize_model(const Graph& graph, const SaveOptions& options) {
  ModelWriter writer;
  if (!writer.build(graph, options).is_ok()) return {};  // unrepresentable graph: save_model reports why
  std::string out;
  out.reserve(writer.file_bytes());
  writer.emit([&](const void* data, size_t bytes) {
    out.append(static_cast<const char*>(data), bytes);
    return true;
  });
  return out;
}

Status save_model(const Graph& graph, const std::string& path, const SaveOptions& options) {
  // A graph the loader would reject is not written at all.
  Status verified = verify_graph(graph);
  if (!verified.is_ok()) return verified.with_context(path + ": graph does not verify");
  ModelWriter writer;
  SEQRUN_TRY(writer.build(graph, options).with_context(path));

  // Write PATH.tmp, flush it to disk, then rename: PATH is either the old file or the complete new one.
  const std::string tmp_path = path + ".tmp";
  std::FILE* file = std::fopen(tmp_path.c_str(), "wb");
  if (file == nullptr) return make_error("{}: cannot create '{}': {}", path, tmp_path, std::strerror(errno));
  bool ok = writer.emit([&](const void* data, size_t bytes) {
    return bytes == 0 || std::fwrite(data, 1, bytes, file) == bytes;
  });
  ok = ok && std::fflush(file) == 0 && ::fsync(::fileno(file)) == 0;
  int write_errno = errno;
  if (std::fclose(file) != 0 && ok) {
    ok = false;
    write_errno = errno;
  }
  if (!ok) {
    std::remove(tmp_path.c_str());
    return make_error("{}: writing '{}' failed: {}", path, tmp_path, std::strerror(write_errno));
  }
  if (std::rename(tmp_path.c_str(), path.c_str()) != 0) {
    int rename_errno = errno;
    std::remove(tmp_path.c_str());
    return make_error("{}: cannot rename '{}' into place: {}", path, tmp_path, std::strerror(rename_errno));
  }
  return Status::ok();
}

}  // namespace seqrun
