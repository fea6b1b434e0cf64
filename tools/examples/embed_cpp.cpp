// embed_cpp: the C++ API in one page — load a .seqrun model, run it on numbers from the command line, print
// every output. The same program as embed_c.c, with runtime::Model and runtime::Session.
//
//   embed_cpp MODEL.seqrun VALUE...
//
// The model must take one f32 input; its symbolic dims are set to 1 and the VALUEs fill it. Prints one line
// per output, e.g. "y: f32[1, 3] = 3.375 2.5 4.375".
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "runtime/model.h"
#include "runtime/seqrun.h"  // only for seqrun_version()
#include "runtime/session.h"

using seqrun::Result;
using seqrun::Tensor;
using seqrun::runtime::Model;
using seqrun::runtime::Session;

static int fail(const std::string& message) {
  std::fprintf(stderr, "embed_cpp: error: %s\n", message.c_str());
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: embed_cpp MODEL.seqrun VALUE...\n");
    return 2;
  }
  std::printf("seqrun %s\n", seqrun_version());

  // One Model, loaded once and shared read-only; any number of Sessions (one per thread) can run it.
  Result<std::shared_ptr<const Model>> model = Model::load(argv[1]);
  if (!model) return fail(model.status().message());
  const seqrun::Graph& graph = (*model)->graph();
  if (graph.inputs().size() != 1) return fail("this example feeds models with one input");
  const seqrun::TensorType& type = graph.inputs()[0]->type();
  if (type.dtype() != seqrun::DType::f32 || !type.has_rank())
    return fail("the input is not f32 of known rank");

  seqrun::Shape shape;
  for (const seqrun::Dim& d : type.dims()) shape.push_back(d.is_static() ? d.value() : 1);  // symbols: 1
  std::vector<float> values;
  for (int i = 2; i < argc; ++i) values.push_back(static_cast<float>(std::atof(argv[i])));
  if (static_cast<int64_t>(values.size()) != seqrun::num_elements(shape)) {
    return fail("input '" + graph.inputs()[0]->name() + "' has " +
                std::to_string(seqrun::num_elements(shape)) + " elements, " + std::to_string(values.size()) +
                " values given");
  }

  Result<std::unique_ptr<Session>> session = Session::from_model(*model);
  if (!session) return fail(session.status().message());
  Result<std::vector<Tensor>> outputs = (*session)->run({Tensor::from_vector<float>(shape, values)});
  if (!outputs) return fail(outputs.status().message());

  const std::vector<std::string> names = (*session)->output_names();
  for (size_t j = 0; j < names.size(); ++j) {
    const Tensor& t = (*outputs)[j];
    std::printf("%s: %s%s =", names[j].c_str(), std::string(seqrun::dtype_name(t.dtype())).c_str(),
                seqrun::shape_to_string(t.shape()).c_str());
    if (t.dtype() == seqrun::DType::f32) {
      for (int64_t i = 0; i < t.numel(); ++i) std::printf(" %g", t.data<float>()[i]);
    } else {
      std::printf(" (%lld elements, not f32)", static_cast<long long>(t.numel()));
    }
    std::printf("\n");
  }
  return 0;
}
