// Attribute equality and type names.
#include "ir/attribute.h"

#include "ir/graph.h"
#include "ir/text.h"

namespace seqrun {

const char* attr_type_name(AttrType t) {
  switch (t) {
    case AttrType::Int: return "int";
    case AttrType::Float: return "float";
    case AttrType::String: return "string";
    case AttrType::Ints: return "ints";
    case AttrType::Floats: return "floats";
    case AttrType::Strings: return "strings";
    case AttrType::Tensor: return "tensor";
    case AttrType::Graph: return "graph";
  }
  return "?";
}

bool Attribute::equals(const Attribute& other) const {
  if (type() != other.type()) return false;
  switch (type()) {
    case AttrType::Tensor: return tensor().same_bytes(other.tensor());
    case AttrType::Graph: return print_graph(*graph()) == print_graph(*other.graph());
    case AttrType::Float: {
      float a = f(), b = other.f();
      return a == b || (a != a && b != b);
    }
    case AttrType::Int: return i() == other.i();
    case AttrType::String: return s() == other.s();
    case AttrType::Ints: return ints() == other.ints();
    case AttrType::Floats: return floats() == other.floats();
    case AttrType::Strings: return strings() == other.strings();
  }
  return false;
}

}  // namespace seqrun
