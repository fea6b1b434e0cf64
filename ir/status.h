// Status and Result<T>: how every fallible seqrun call reports failure without throwing.
//
// A Status is either ok or carries one human-readable message that names the thing at fault
// (file, tensor, node, input). Result<T> holds a value or a non-ok Status. Library code never
// throws across a public boundary; internal code may use SEQRUN_TRY / SEQRUN_ASSIGN to propagate.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace seqrun {

class Status {
 public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status error(std::string message) {
    Status s;
    s.failed_ = true;
    s.message_ = std::move(message);
    return s;
  }
  bool is_ok() const { return !failed_; }
  explicit operator bool() const { return !failed_; }
  const std::string& message() const { return message_; }
  // Prefixes the message with context, e.g. the file or node name: "model.seqrun: " + message.
  Status with_context(const std::string& context) const {
    if (!failed_) return *this;
    return error(context + ": " + message_);
  }

 private:
  bool failed_ = false;
  std::string message_;
};

template <typename... Args>
Status make_error(fmt::format_string<Args...> format, Args&&... args) {
  return Status::error(fmt::format(format, std::forward<Args>(args)...));
}

template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}           // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) {}  // NOLINT(google-explicit-constructor)
  bool is_ok() const { return value_.has_value(); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace seqrun

#define SEQRUN_CONCAT_INNER(a, b) a##b
#define SEQRUN_CONCAT(a, b) SEQRUN_CONCAT_INNER(a, b)

// Returns early from the enclosing function (which must return Status or Result<...>) on error.
#define SEQRUN_TRY(expr)                            \
  do {                                              \
    ::seqrun::Status seqrun_try_status_ = (expr);   \
    if (!seqrun_try_status_.is_ok()) return seqrun_try_status_; \
  } while (0)

#define SEQRUN_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                       \
  if (!tmp.is_ok()) return tmp.status();   \
  lhs = std::move(tmp).value()

// SEQRUN_ASSIGN(auto x, fallible_call()); declares x from a Result or returns its error.
#define SEQRUN_ASSIGN(lhs, expr) SEQRUN_ASSIGN_IMPL(SEQRUN_CONCAT(seqrun_result_, __LINE__), lhs, expr)
