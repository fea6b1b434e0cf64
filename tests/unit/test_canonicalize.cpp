// canonicalize pass: IR text in -> pass -> IR text out, including graphs it must leave alone.
#include <catch2/catch.hpp>

#include "ir/text.h"
#include "passes/pass.h"

using namespace seqrun;

namespace {
std::string run_canonicalize(const std::string& text) {
  auto g = parse_graph(text);
  REQUIRE(g.is_ok());
  auto reports = passes::run_passes(**g, {"canonicalize"});
  REQUIRE(reports.is_ok());
  return print_graph(**g);
}

std::string normalize(const std::string& text) {
  auto g = parse_graph(text);
  REQUIRE(g.is_ok());
  return print_graph(**g);
}
}  // namespace

TEST_CASE("canonicalize: folds Shape of a static value and drops dead nodes") {
  std::string in = R"(
graph main(%x: f32[2, 3]) {
  %s = Shape(%x) : i64[2]
  %dead = Exp(%x) : f32[2, 3]
  %r = Reshape(%x, %s) : f32[2, 3]
  return %r
}
)";
  std::string expected = R"(
graph main(%x: f32[2, 3]) {
  %s_folded = const i64[2] [2, 3]
  %r = Reshape(%x, %s_folded) : f32[2, 3]
  return %r
}
)";
  CHECK(run_canonicalize(in) == normalize(expected));
}

TEST_CASE("canonicalize: leaves Shape of a symbolic value alone") {
  std::string in = R"(
graph main(%x: f32[batch, 3]) {
  %s = Shape(%x) : i64[2]
  %r = Reshape(%x, %s) : f32[batch, 3]
  return %r
}
)";
  CHECK(run_canonicalize(in) == normalize(in));
}

TEST_CASE("canonicalize: forwards Identity but keeps output names") {
  std::string in = R"(
graph main(%x: f32[2]) {
  %a = Neg(%x) : f32[2]
  %b = Identity(%a) : f32[2]
  %y = Identity(%b) : f32[2]
  return %y
}
)";
  std::string expected = R"(
graph main(%x: f32[2]) {
  %y = Neg(%x) : f32[2]
  return %y
}
)";
  CHECK(run_canonicalize(in) == normalize(expected));
}

TEST_CASE("canonicalize: an Identity from input to output stays (names must survive)") {
  std::string in = R"(
graph main(%x: f32[2]) {
  %y = Identity(%x) : f32[2]
  return %y
}
)";
  CHECK(run_canonicalize(in) == normalize(in));
}
