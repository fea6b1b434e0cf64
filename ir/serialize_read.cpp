// Loading .seqrun model files: mmap, verify everything, build the Graph over zero-copy weight views.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <unordered_set>
#include <vector>

#include "ir/op_schema.h"
#include "ir/seqrun_generated.h"
#include "ir/serialize.h"
#include "ir/verify.h"

namespace seqrun {

namespace {

constexpr uint64_t kHeaderBytes = 16;
constexpr uint64_t kBlobAlignment = 64;
constexpr int kMaxGraphNesting = 64;
// Root offset + file identifier + the smallest vtable and table.
constexpr size_t kMinFlatbufferBytes = 12;

uint32_t read_le32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

uint64_t read_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Element i of a FlatBuffers vector of 64-bit scalars. FlatBuffers 2.0.8's verifier only checks
// the 4-byte alignment of a vector's length, so 8-byte elements may sit misaligned: copy, don't cast.
int64_t vector_i64(const flatbuffers::Vector<int64_t>* v, uint32_t i) {
  int64_t x;
  std::memcpy(&x, v->Data() + static_cast<size_t>(i) * 8, 8);
  return x;
}

const flatbuffers::Table* as_table(const void* t) {
  return reinterpret_cast<const flatbuffers::Table*>(t);
}

// "Shallow" verifiers for the tables that hold other tables. They check the table's own fields
// exactly like the generated Verify() but do not descend into child tables or vectors of strings:
// the reader verifies each child right before it reads it, so a file whose offsets make objects
// shared (a DAG) costs work proportional to what is read, which the read budget bounds. The
// generated recursive Verify() would verify a shared vector of strings once per reference
// (quadratic in the file size). Leaf tables (Value, Tensor, KeyValue) use the generated Verify().
// When a field is appended to these tables in ir/seqrun.fbs, add it here before reading it.
bool verify_shallow(flatbuffers::Verifier& v, const fb::Model* m) {
  const flatbuffers::Table* t = as_table(m);
  return t->VerifyTableStart(v) && t->VerifyOffset(v, fb::Model::VT_PRODUCER) &&
         v.VerifyString(m->producer()) && t->VerifyOffset(v, fb::Model::VT_METADATA) &&
         v.VerifyVector(m->metadata()) && t->VerifyOffset(v, fb::Model::VT_GRAPH) &&
         t->VerifyOffset(v, fb::Model::VT_TENSORS) && v.VerifyVector(m->tensors()) && v.EndTable();
}

bool verify_shallow(flatbuffers::Verifier& v, const fb::Graph* g) {
  const flatbuffers::Table* t = as_table(g);
  return t->VerifyTableStart(v) && t->VerifyOffset(v, fb::Graph::VT_NAME) && v.VerifyString(g->name()) &&
         t->VerifyOffset(v, fb::Graph::VT_VALUES) && v.VerifyVector(g->values()) &&
         t->VerifyOffset(v, fb::Graph::VT_NODES) && v.VerifyVector(g->nodes()) &&
         t->VerifyOffset(v, fb::Graph::VT_INPUTS) && v.VerifyVector(g->inputs()) &&
         t->VerifyOffset(v, fb::Graph::VT_OUTPUTS) && v.VerifyVector(g->outputs()) &&
         t->VerifyOffset(v, fb::Graph::VT_CAPTURES) && v.VerifyVector(g->captures()) && v.EndTable();
}

bool verify_shallow(flatbuffers::Verifier& v, const fb::Node* n) {
  const flatbuffers::Table* t = as_table(n);
  return t->VerifyTableStart(v) && t->VerifyOffset(v, fb::Node::VT_OP) && v.VerifyString(n->op()) &&
         t->VerifyOffset(v, fb::Node::VT_NAME) && v.VerifyString(n->name()) &&
         t->VerifyOffset(v, fb::Node::VT_INPUTS) && v.VerifyVector(n->inputs()) &&
         t->VerifyOffset(v, fb::Node::VT_OUTPUTS) && v.VerifyVector(n->outputs()) &&
         t->VerifyOffset(v, fb::Node::VT_ATTRS) && v.VerifyVector(n->attrs()) &&
         t->VerifyField<int32_t>(v, fb::Node::VT_NUM_CAPTURES, 4) && v.EndTable();
}

bool verify_shallow(flatbuffers::Verifier& v, const fb::Attribute* a) {
  const flatbuffers::Table* t = as_table(a);
  return t->VerifyTableStart(v) && t->VerifyOffset(v, fb::Attribute::VT_NAME) && v.VerifyString(a->name()) &&
         t->VerifyField<uint8_t>(v, fb::Attribute::VT_TYPE, 1) &&
         t->VerifyField<int64_t>(v, fb::Attribute::VT_I, 8) &&
         t->VerifyField<float>(v, fb::Attribute::VT_F, 4) && t->VerifyOffset(v, fb::Attribute::VT_S) &&
         v.VerifyString(a->s()) && t->VerifyOffset(v, fb::Attribute::VT_INTS) && v.VerifyVector(a->ints()) &&
         t->VerifyOffset(v, fb::Attribute::VT_FLOATS) && v.VerifyVector(a->floats()) &&
         t->VerifyOffset(v, fb::Attribute::VT_STRINGS) && v.VerifyVector(a->strings()) &&
         t->VerifyField<int32_t>(v, fb::Attribute::VT_TENSOR, 4) &&
         t->VerifyOffset(v, fb::Attribute::VT_GRAPH) && v.EndTable();
}

// A name from the file as error messages show it: at most 120 characters. (Control characters are
// escaped for the whole message in one_line, so a name cannot break the one-line error.)
std::string shown(const std::string& name) {
  constexpr size_t kMaxShown = 120;
  return name.size() <= kMaxShown ? name : name.substr(0, kMaxShown) + "...";
}

// The message with control characters escaped, so every load error is exactly one line.
Status one_line(const Status& st) {
  std::string out;
  for (char c : st.message()) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  return Status::error(std::move(out));
}

std::string value_part(const std::string& name, size_t index) {
  return fmt::format("value '{}' (#{})", shown(name), index);
}

std::string node_part(const std::string& name, size_t index) {
  return name.empty() ? fmt::format("node #{}", index) : fmt::format("node '{}' (#{})", shown(name), index);
}

// Reads one verified-as-we-go model. Errors are "<part>: <problem>"; the caller prefixes the file
// name. Every count in the file is checked against the buffer before anything is sized from it,
// and the bytes of strings and vectors copied out are charged to `read_budget_bytes_` (a few times
// the flatbuffer's size) so that shared objects cannot multiply the work.
class ModelReader {
 public:
  ModelReader(const uint8_t* file, size_t file_bytes, std::shared_ptr<const void> keepalive)
      : file_(file), file_bytes_(file_bytes), keepalive_(std::move(keepalive)) {}

  Result<ModelFile> read() {
    SEQRUN_TRY(read_header());
    flatbuffers::Verifier::Options options;
    options.max_depth = 16;  // shallow verification: only Value -> TensorType -> Dim nests
    // Distinct tables are at least 4 bytes apart, so a file can hold no more than this many;
    // it also caps how often shared tables are revisited.
    options.max_tables = static_cast<flatbuffers::uoffset_t>(flatbuffer_bytes_ / 4 + 64);
    verifier_.emplace(flatbuffer_, flatbuffer_bytes_, options);
    read_budget_bytes_ = 4 * flatbuffer_bytes_ + 65536;

    if (flatbuffer_bytes_ < kMinFlatbufferBytes || !fb::ModelBufferHasIdentifier(flatbuffer_)) {
      return make_error("flatbuffer: missing the '{}' identifier (not a seqrun model flatbuffer)",
                        fb::ModelIdentifier());
    }
    flatbuffers::uoffset_t root_offset = verifier_->VerifyOffset(0);
    if (root_offset == 0) return make_error("flatbuffer: root offset is out of bounds");
    const auto* model = reinterpret_cast<const fb::Model*>(flatbuffer_ + root_offset);
    if (!verify_shallow(*verifier_, model)) return make_error("flatbuffer: model table fails verification");

    ModelFile out;
    SEQRUN_ASSIGN(out.producer, read_string(model->producer(), "producer"));
    SEQRUN_TRY(read_metadata(model->metadata(), out.metadata));
    SEQRUN_TRY(read_tensors(model->tensors()));
    if (model->graph() == nullptr) return make_error("graph: the model has no graph");
    SEQRUN_ASSIGN(out.graph, read_graph(model->graph(), 0));
    Status verified = verify_graph(*out.graph);
    if (!verified.is_ok()) return verified.with_context("graph");
    return out;
  }

 private:
  // One entry of a graph's value table while the graph is being built.
  struct ValueRecord {
    std::string name;
    TensorType type;
    Value::Role role = Value::Role::Intermediate;
    int32_t tensor = -1;
    int64_t producer_node = -1;  // index of the node that outputs it (intermediates)
    bool listed = false;         // appears in the graph's inputs / captures list
    Value* value = nullptr;      // set once the value exists in the Graph being built
  };

  Status read_header() {
    if (file_bytes_ < kHeaderBytes) {
      return make_error("header: file is {} bytes, shorter than the {}-byte header", file_bytes_,
                        kHeaderBytes);
    }
    if (std::memcmp(file_, kFileMagic, 4) != 0) {
      return make_error(
          "header: bad magic {:02x} {:02x} {:02x} {:02x} (expected \"SEQR\": not a .seqrun file)", file_[0],
          file_[1], file_[2], file_[3]);
    }
    uint32_t version = read_le32(file_ + 4);
    if (version == 0) return make_error("header: format version 0 is invalid");
    if (version > kFormatVersion) {
      return make_error("header: file has format version {}, newer than this build reads (version {})",
                        version, kFormatVersion);
    }
    uint64_t flatbuffer_bytes = read_le64(file_ + 8);
    uint64_t after_header = file_bytes_ - kHeaderBytes;
    if (flatbuffer_bytes > after_header) {
      return make_error("flatbuffer: size {} runs past the end of the file ({} bytes after the header)",
                        flatbuffer_bytes, after_header);
    }
    if (flatbuffer_bytes >= FLATBUFFERS_MAX_BUFFER_SIZE) {
      return make_error("flatbuffer: size {} exceeds the FlatBuffers limit of {} bytes", flatbuffer_bytes,
                        FLATBUFFERS_MAX_BUFFER_SIZE - 1);
    }
    flatbuffer_ = file_ + kHeaderBytes;
    flatbuffer_bytes_ = static_cast<size_t>(flatbuffer_bytes);
    uint64_t blob_start =
        (kHeaderBytes + flatbuffer_bytes + kBlobAlignment - 1) / kBlobAlignment * kBlobAlignment;
    if (blob_start > file_bytes_) {
      return make_error("blob: starts at byte {}, past the end of the file ({} bytes)", blob_start,
                        file_bytes_);
    }
    blob_ = file_ + blob_start;
    blob_bytes_ = file_bytes_ - blob_start;
    return Status::ok();
  }

  Status charge(uint64_t bytes, const std::string& part) {
    if (bytes > read_budget_bytes_) {
      return make_error("{}: the flatbuffer references more data than it holds (shared or repeated objects)",
                        part);
    }
    read_budget_bytes_ -= bytes;
    return Status::ok();
  }

  Result<std::string> read_string(const flatbuffers::String* s, const std::string& part) {
    if (s == nullptr) return std::string();
    SEQRUN_TRY(charge(s->size() + 1, part));
    return s->str();
  }

  template <typename T>
  Status charge_vector(const flatbuffers::Vector<T>* v, const std::string& part) {
    return v == nullptr ? Status::ok() : charge(static_cast<uint64_t>(v->size()) * sizeof(T) + 4, part);
  }

  Status read_metadata(const flatbuffers::Vector<flatbuffers::Offset<fb::KeyValue>>* list,
                       std::map<std::string, std::string>& out) {
    if (list == nullptr) return Status::ok();
    SEQRUN_TRY(charge_vector(list, "metadata"));
    for (flatbuffers::uoffset_t i = 0; i < list->size(); ++i) {
      std::string part = fmt::format("metadata #{}", i);
      const fb::KeyValue* kv = list->Get(i);
      if (!verifier_->VerifyTable(kv)) return make_error("{}: fails FlatBuffers verification", part);
      SEQRUN_ASSIGN(std::string key, read_string(kv->key(), part));
      SEQRUN_ASSIGN(std::string value, read_string(kv->value(), part));
      if (!out.emplace(key, value).second) return make_error("{}: duplicate key '{}'", part, shown(key));
    }
    return Status::ok();
  }

  Status read_tensors(const flatbuffers::Vector<flatbuffers::Offset<fb::Tensor>>* list) {
    if (list == nullptr) return Status::ok();
    SEQRUN_TRY(charge_vector(list, "tensors"));
    struct Extent {
      uint64_t offset;
      uint64_t end;
      size_t index;
    };
    std::vector<Extent> extents;
    std::vector<std::string> names;
    for (flatbuffers::uoffset_t i = 0; i < list->size(); ++i) {
      const fb::Tensor* ft = list->Get(i);
      if (!verifier_->VerifyTable(ft)) return make_error("tensor #{}: fails FlatBuffers verification", i);
      SEQRUN_ASSIGN(std::string name, read_string(ft->name(), fmt::format("tensor #{}", i)));
      std::string part = fmt::format("tensor '{}' (#{})", shown(name), i);
      if (!dtype_is_valid(ft->dtype())) return make_error("{}: invalid dtype {}", part, ft->dtype());
      DType dtype = static_cast<DType>(ft->dtype());
      Shape shape;
      if (ft->shape() != nullptr) {
        SEQRUN_TRY(charge_vector(ft->shape(), part));
        for (flatbuffers::uoffset_t k = 0; k < ft->shape()->size(); ++k)
          shape.push_back(vector_i64(ft->shape(), k));
      }
      auto elements = checked_num_elements(shape, dtype_size(dtype));
      if (!elements.is_ok()) return elements.status().with_context(part);
      SEQRUN_TRY(check_nonzero_dims(shape, dtype_size(dtype), part));
      uint64_t expected_bytes = static_cast<uint64_t>(elements.value()) * dtype_size(dtype);
      uint64_t offset = ft->offset();
      uint64_t size = ft->size();
      if (size != expected_bytes) {
        return make_error("{}: size {} bytes does not match shape {} of {} ({} bytes)", part, size,
                          shape_to_string(shape), dtype_name(dtype), expected_bytes);
      }
      if (offset % kBlobAlignment != 0) {
        return make_error("{}: offset {} is not a multiple of {}", part, offset, kBlobAlignment);
      }
      if (offset > blob_bytes_ || size > blob_bytes_ - offset) {
        return make_error("{}: offset {}+{} exceeds blob size {}", part, offset, size, blob_bytes_);
      }
      void* data = const_cast<uint8_t*>(blob_ + offset);  // read-only mapping: views must not be written
      tensors_.push_back(Tensor::view(dtype, std::move(shape), data, keepalive_));
      tensor_claimed_.push_back(false);
      if (size > 0) extents.push_back({offset, offset + size, i});
      names.push_back(std::move(name));
    }
    // No two tensors may share bytes: sort by start and compare each with the furthest end so far.
    std::sort(extents.begin(), extents.end(), [](const Extent& a, const Extent& b) {
      return a.offset < b.offset || (a.offset == b.offset && a.index < b.index);
    });
    const Extent* furthest = nullptr;
    for (const Extent& e : extents) {
      if (furthest != nullptr && e.offset < furthest->end) {
        return make_error("tensor '{}' (#{}): bytes [{}, {}) overlap tensor '{}' (#{}) at [{}, {})",
                          shown(names[e.index]), e.index, e.offset, e.end, shown(names[furthest->index]),
                          furthest->index, furthest->offset, furthest->end);
      }
      if (furthest == nullptr || e.end > furthest->end) furthest = &e;
    }
    return Status::ok();
  }

  // The dims other than 0 must multiply without overflow too: checked_num_elements stops at a 0 dim,
  // but code that multiplies dims left to right (num_elements) would overflow before reaching it.
  static Status check_nonzero_dims(const std::vector<int64_t>& dims, size_t elem_bytes,
                                   const std::string& part) {
    Shape nonzero;
    for (int64_t d : dims) {
      if (d != 0) nonzero.push_back(d);
    }
    auto elements = checked_num_elements(nonzero, elem_bytes);
    return elements.is_ok() ? Status::ok() : elements.status().with_context(part);
  }

  // Each tensor belongs to one constant or attribute (as the writer lays them out): a table that
  // points many values at one tensor would make every copy of the graph repeat its bytes.
  Status claim_tensor(int32_t index, const std::string& part) {
    if (tensor_claimed_[index])
      return make_error("{}: tensor #{} is already used by another value or attribute", part, index);
    tensor_claimed_[index] = true;
    return Status::ok();
  }

  Result<TensorType> read_type(const fb::TensorType* t, const std::string& part) {
    if (t == nullptr) return TensorType();
    if (t->dtype() != 0 && !dtype_is_valid(t->dtype()))
      return make_error("{}: invalid dtype {}", part, t->dtype());
    DType dtype = static_cast<DType>(t->dtype());
    if (!t->rank_known()) {
      if (t->dims() != nullptr && t->dims()->size() > 0) {
        return make_error("{}: type has unknown rank but lists {} dims", part, t->dims()->size());
      }
      return TensorType::unknown_rank(dtype);
    }
    std::vector<Dim> dims;
    if (t->dims() != nullptr) {
      SEQRUN_TRY(charge_vector(t->dims(), part));
      for (flatbuffers::uoffset_t i = 0; i < t->dims()->size(); ++i) {
        const fb::Dim* d = t->dims()->Get(i);  // verified with the value's table
        SEQRUN_ASSIGN(std::string symbol, read_string(d->symbol(), part));
        if (d->value() >= 0) {
          if (!symbol.empty())
            return make_error("{}: dim {} has both size {} and symbol '{}'", part, i, d->value(),
                              shown(symbol));
          dims.emplace_back(d->value());
        } else if (!symbol.empty()) {
          dims.push_back(Dim::symbol(symbol));
        } else {
          dims.push_back(Dim::unknown());
        }
      }
    }
    std::vector<int64_t> static_dims;
    for (const Dim& d : dims) {
      if (d.is_static()) static_dims.push_back(d.value());
    }
    SEQRUN_TRY(check_nonzero_dims(static_dims, std::max<size_t>(dtype_size(dtype), 1), part));
    return TensorType(dtype, std::move(dims));
  }

  // Reads a graph's value table into records (no Graph objects yet).
  Status read_values(const fb::Graph* fg, std::vector<ValueRecord>& records) {
    const auto* values = fg->values();
    if (values == nullptr) return Status::ok();
    SEQRUN_TRY(charge_vector(values, "values"));
    std::unordered_set<std::string> names;
    for (flatbuffers::uoffset_t i = 0; i < values->size(); ++i) {
      const fb::Value* fv = values->Get(i);
      if (!verifier_->VerifyTable(fv)) return make_error("value #{}: fails FlatBuffers verification", i);
      ValueRecord r;
      SEQRUN_ASSIGN(r.name, read_string(fv->name(), fmt::format("value #{}", i)));
      std::string part = value_part(r.name, i);
      if (r.name.empty()) return make_error("value #{}: has no name", i);
      if (!names.insert(r.name).second) return make_error("{}: duplicate value name", part);
      if (fv->role() > static_cast<uint8_t>(Value::Role::Capture))
        return make_error("{}: invalid role {}", part, fv->role());
      r.role = static_cast<Value::Role>(fv->role());
      SEQRUN_ASSIGN(r.type, read_type(fv->type(), part));
      if (r.role == Value::Role::Constant) {
        r.tensor = fv->tensor();
        if (r.tensor < 0 || static_cast<size_t>(r.tensor) >= tensors_.size()) {
          return make_error("{}: constant's tensor index {} is out of range ({} tensors)", part, r.tensor,
                            tensors_.size());
        }
        SEQRUN_TRY(claim_tensor(r.tensor, part));
      }
      records.push_back(std::move(r));
    }
    return Status::ok();
  }

  // Validates an index list (graph inputs, outputs, captures) and returns it.
  Result<std::vector<int32_t>> read_index_list(const flatbuffers::Vector<int32_t>* list, size_t num_values,
                                               const std::string& what) {
    std::vector<int32_t> out;
    if (list == nullptr) return out;
    SEQRUN_TRY(charge_vector(list, what));
    for (flatbuffers::uoffset_t i = 0; i < list->size(); ++i) {
      int32_t index = list->Get(i);
      if (index < 0 || static_cast<size_t>(index) >= num_values) {
        return make_error("{} #{}: value index {} is out of range ({} values)", what, i, index, num_values);
      }
      out.push_back(index);
    }
    return out;
  }

  // Marks graph inputs / captures: each listed once, each with the matching role, none unlisted.
  Status check_listed(const std::vector<int32_t>& list, std::vector<ValueRecord>& records, Value::Role role,
                      const std::string& what) {
    for (size_t i = 0; i < list.size(); ++i) {
      ValueRecord& r = records[list[i]];
      if (r.role != role)
        return make_error("{} #{}: {} does not have the {} role", what, i, value_part(r.name, list[i]), what);
      if (r.listed) return make_error("{} #{}: {} is listed twice", what, i, value_part(r.name, list[i]));
      r.listed = true;
    }
    for (size_t i = 0; i < records.size(); ++i) {
      if (records[i].role == role && !records[i].listed) {
        return make_error("{}: has the {} role but is not in the graph's {} list",
                          value_part(records[i].name, i), what, what);
      }
    }
    return Status::ok();
  }

  Result<Attribute> read_attribute(const fb::Attribute* fa, const std::string& part, int depth) {
    switch (fa->type()) {
      case static_cast<uint8_t>(AttrType::Int):
        return Attribute(fa->i());
      case static_cast<uint8_t>(AttrType::Float):
        return Attribute(fa->f());
      case static_cast<uint8_t>(AttrType::String): {
        SEQRUN_ASSIGN(std::string s, read_string(fa->s(), part));
        return Attribute(std::move(s));
      }
      case static_cast<uint8_t>(AttrType::Ints): {
        std::vector<int64_t> ints;
        if (fa->ints() != nullptr) {
          SEQRUN_TRY(charge_vector(fa->ints(), part));
          for (flatbuffers::uoffset_t i = 0; i < fa->ints()->size(); ++i)
            ints.push_back(vector_i64(fa->ints(), i));
        }
        return Attribute(std::move(ints));
      }
      case static_cast<uint8_t>(AttrType::Floats): {
        std::vector<float> floats;
        if (fa->floats() != nullptr) {
          SEQRUN_TRY(charge_vector(fa->floats(), part));
          for (flatbuffers::uoffset_t i = 0; i < fa->floats()->size(); ++i)
            floats.push_back(fa->floats()->Get(i));
        }
        return Attribute(std::move(floats));
      }
      case static_cast<uint8_t>(AttrType::Strings): {
        std::vector<std::string> strings;
        if (fa->strings() != nullptr) {
          SEQRUN_TRY(charge_vector(fa->strings(), part));
          for (flatbuffers::uoffset_t i = 0; i < fa->strings()->size(); ++i) {
            const flatbuffers::String* s = fa->strings()->Get(i);
            if (!verifier_->VerifyString(s))
              return make_error("{}: string {} fails FlatBuffers verification", part, i);
            SEQRUN_ASSIGN(std::string str, read_string(s, part));
            strings.push_back(std::move(str));
          }
        }
        return Attribute(std::move(strings));
      }
      case static_cast<uint8_t>(AttrType::Tensor): {
        int32_t index = fa->tensor();
        if (index < 0 || static_cast<size_t>(index) >= tensors_.size()) {
          return make_error("{}: tensor index {} is out of range ({} tensors)", part, index, tensors_.size());
        }
        SEQRUN_TRY(claim_tensor(index, part));
        return Attribute(tensors_[index]);
      }
      case static_cast<uint8_t>(AttrType::Graph): {
        if (fa->graph() == nullptr) return make_error("{}: graph attribute holds no graph", part);
        auto body = read_graph(fa->graph(), depth + 1);
        if (!body.is_ok()) return body.status().with_context(part);
        return Attribute(std::shared_ptr<Graph>(std::move(body).value()));
      }
      default:
        break;
    }
    return make_error("{}: invalid attribute type {}", part, fa->type());
  }

  Result<std::map<std::string, Attribute>> read_attributes(const fb::Node* fn, const std::string& node,
                                                           int depth) {
    std::map<std::string, Attribute> attrs;
    const auto* list = fn->attrs();
    if (list == nullptr) return attrs;
    SEQRUN_TRY(charge_vector(list, node));
    for (flatbuffers::uoffset_t i = 0; i < list->size(); ++i) {
      const fb::Attribute* fa = list->Get(i);
      if (!verify_shallow(*verifier_, fa))
        return make_error("{}: attribute #{} fails FlatBuffers verification", node, i);
      SEQRUN_ASSIGN(std::string key, read_string(fa->name(), node));
      std::string part = fmt::format("{}: attribute '{}'", node, shown(key));
      if (key.empty()) return make_error("{}: attribute #{} has no name", node, i);
      if (attrs.count(key) > 0) return make_error("{}: duplicate attribute", part);
      SEQRUN_ASSIGN(Attribute a, read_attribute(fa, part, depth));
      attrs.emplace(std::move(key), std::move(a));
    }
    return attrs;
  }

  Result<std::unique_ptr<Graph>> read_graph(const fb::Graph* fg, int depth) {
    if (depth > kMaxGraphNesting)
      return make_error("graph: nested graphs deeper than {} levels", kMaxGraphNesting);
    if (!verify_shallow(*verifier_, fg)) return make_error("graph: table fails FlatBuffers verification");
    SEQRUN_ASSIGN(std::string graph_name, read_string(fg->name(), "graph"));
    if (fg->name() == nullptr) graph_name = "main";
    // Errors name values and nodes by index within this graph; a nested graph's errors carry the
    // node and attribute that hold it as context, so the graph's own name adds nothing.
    std::vector<ValueRecord> records;
    SEQRUN_TRY(read_values(fg, records));
    return build_graph(fg, graph_name, records, depth);
  }

  Result<std::unique_ptr<Graph>> build_graph(const fb::Graph* fg, const std::string& graph_name,
                                             std::vector<ValueRecord>& records, int depth) {
    const size_t num_values = records.size();
    // Pass 1: verify node tables and record which node produces each value.
    std::vector<const fb::Node*> nodes;
    if (fg->nodes() != nullptr) {
      SEQRUN_TRY(charge_vector(fg->nodes(), "nodes"));
      for (flatbuffers::uoffset_t k = 0; k < fg->nodes()->size(); ++k) {
        const fb::Node* fn = fg->nodes()->Get(k);
        if (!verify_shallow(*verifier_, fn)) return make_error("node #{}: fails FlatBuffers verification", k);
        nodes.push_back(fn);
        SEQRUN_ASSIGN(std::string name, read_string(fn->name(), "node"));
        SEQRUN_ASSIGN(auto outputs,
                      read_index_list(fn->outputs(), num_values, node_part(name, k) + ": output"));
        for (size_t j = 0; j < outputs.size(); ++j) {
          ValueRecord& r = records[outputs[j]];
          std::string value = value_part(r.name, outputs[j]);
          if (r.role != Value::Role::Intermediate) {
            return make_error("{}: output #{} is {}, which is a graph input, constant or capture",
                              node_part(name, k), j, value);
          }
          if (r.producer_node >= 0) {
            return make_error("{}: output #{} is {}, already produced by node #{}", node_part(name, k), j,
                              value, r.producer_node);
          }
          r.producer_node = k;
        }
      }
    }
    for (size_t i = 0; i < num_values; ++i) {
      if (records[i].role == Value::Role::Intermediate && records[i].producer_node < 0) {
        return make_error("{}: is never defined (no node outputs it)", value_part(records[i].name, i));
      }
    }
    SEQRUN_ASSIGN(auto inputs, read_index_list(fg->inputs(), num_values, "input"));
    SEQRUN_ASSIGN(auto captures, read_index_list(fg->captures(), num_values, "capture"));
    SEQRUN_ASSIGN(auto outputs, read_index_list(fg->outputs(), num_values, "output"));
    SEQRUN_TRY(check_listed(inputs, records, Value::Role::Input, "input"));
    SEQRUN_TRY(check_listed(captures, records, Value::Role::Capture, "capture"));

    // Pass 2: build. Constants keep their order in the value table (the text form prints them so).
    auto g = std::make_unique<Graph>(graph_name);
    for (int32_t i : inputs) records[i].value = g->add_input(records[i].name, records[i].type);
    for (int32_t i : captures) records[i].value = g->add_capture(records[i].name, records[i].type);
    for (ValueRecord& r : records) {
      if (r.role == Value::Role::Constant) r.value = g->add_constant(r.name, tensors_[r.tensor]);
    }
    for (size_t k = 0; k < nodes.size(); ++k) {
      const fb::Node* fn = nodes[k];
      SEQRUN_ASSIGN(std::string name, read_string(fn->name(), "node"));
      std::string part = node_part(name, k);
      SEQRUN_ASSIGN(std::string op, read_string(fn->op(), part));
      if (OpRegistry::global().find(op) == nullptr) return make_error("{}: unknown op '{}'", part, shown(op));
      std::vector<Value*> ins;
      if (fn->inputs() != nullptr) {
        SEQRUN_TRY(charge_vector(fn->inputs(), part));
        for (flatbuffers::uoffset_t j = 0; j < fn->inputs()->size(); ++j) {
          int32_t index = fn->inputs()->Get(j);
          if (index == -1) {
            ins.push_back(nullptr);
            continue;
          }
          if (index < 0 || static_cast<size_t>(index) >= num_values) {
            return make_error("{}: input #{} has value index {}, out of range ({} values)", part, j, index,
                              num_values);
          }
          if (records[index].value == nullptr) {
            return make_error("{}: input #{} ({}) is used before it is defined (cycle or missing producer)",
                              part, j, value_part(records[index].name, index));
          }
          ins.push_back(records[index].value);
        }
      }
      SEQRUN_ASSIGN(auto attrs, read_attributes(fn, part, depth));
      SEQRUN_ASSIGN(auto outs, read_index_list(fn->outputs(), num_values, part + ": output"));
      std::vector<std::string> out_names;
      for (int32_t o : outs) out_names.push_back(records[o].name);
      if (fn->num_captures() < 0 || static_cast<size_t>(fn->num_captures()) > ins.size()) {
        return make_error("{}: capture count {} is invalid ({} inputs)", part, fn->num_captures(),
                          ins.size());
      }
      Node* node = g->add_node(op, ins, static_cast<int>(outs.size()), std::move(attrs), out_names);
      node->set_name(name);
      node->set_num_captures(fn->num_captures());
      for (size_t j = 0; j < outs.size(); ++j) {
        g->set_value_type(node->output(static_cast<int>(j)), records[outs[j]].type);
        records[outs[j]].value = node->output(static_cast<int>(j));
      }
      Status signature = verify_node_signature(*node);
      if (!signature.is_ok()) {
        // The schema check names the node by describe(); name it like every other loader error.
        std::string message = signature.message();
        const std::string described = node->describe() + ": ";
        if (message.rfind(described, 0) == 0) message.erase(0, described.size());
        return make_error("{}: {}", part, message);
      }
    }
    std::vector<Value*> graph_outputs;
    for (int32_t o : outputs) graph_outputs.push_back(records[o].value);
    g->set_outputs(std::move(graph_outputs));
    return g;
  }

  const uint8_t* file_;
  size_t file_bytes_;
  std::shared_ptr<const void> keepalive_;
  const uint8_t* flatbuffer_ = nullptr;
  size_t flatbuffer_bytes_ = 0;
  const uint8_t* blob_ = nullptr;
  uint64_t blob_bytes_ = 0;
  std::optional<flatbuffers::Verifier> verifier_;
  uint64_t read_budget_bytes_ = 0;
  std::vector<Tensor> tensors_;
  std::vector<bool> tensor_claimed_;
};

}  // namespace

Result<ModelFile> load_model_from_memory(const uint8_t* data, size_t size, const std::string& name,
                                         std::shared_ptr<const void> keepalive) {
  // Weights are views into the buffer and must be 64-byte aligned (FlatBuffers scalars need 8):
  // a buffer that is not gets copied into one that is.
  if (size > 0 && reinterpret_cast<uintptr_t>(data) % kBlobAlignment != 0) {
    auto* copy = static_cast<uint8_t*>(::operator new(size, std::align_val_t(kBlobAlignment)));
    std::memcpy(copy, data, size);
    keepalive = std::shared_ptr<const void>(copy, [](const void* p) {
      ::operator delete(const_cast<void*>(p), std::align_val_t(kBlobAlignment));
    });
    data = copy;
  }
  ModelReader reader(data, size, std::move(keepalive));
  auto result = reader.read();
  if (!result.is_ok()) return one_line(result.status().with_context(name));
  return result;
}

Result<ModelFile> load_model(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return make_error("{}: cannot stat: {}", path, std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error("{}: not a regular file", path);
  }
  const size_t file_bytes = static_cast<size_t>(st.st_size);
  if (file_bytes < kHeaderBytes) {
    ::close(fd);
    return make_error("{}: header: file is {} bytes, shorter than the {}-byte header", path, file_bytes,
                      kHeaderBytes);
  }
  // Read-only private mapping: weights are used in place and never written through.
  void* base = ::mmap(nullptr, file_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  int map_errno = errno;
  ::close(fd);
  if (base == MAP_FAILED) return make_error("{}: cannot map: {}", path, std::strerror(map_errno));
  std::shared_ptr<const void> mapping(
      base, [file_bytes](const void* p) { ::munmap(const_cast<void*>(p), file_bytes); });
  ModelReader reader(static_cast<const uint8_t*>(base), file_bytes, mapping);
  auto result = reader.read();
  if (!result.is_ok()) return one_line(result.status().with_context(path));
  return result;
}

}  // namespace seqrun
