// Units of work: encoding on rank 0, decoding and running on workers.
#include "unit.hpp"

#include <array>
#include <cstring>

#include "weft/detail/task_wire.hpp"
#include "weft/error.hpp"

namespace weft::dist {

namespace {

template <class T>
void put(std::vector<std::byte>& out, const T& v) {
  std::size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &v, sizeof(T));
}

template <class T>
T get(std::span<const std::byte>& in) {
  if (in.size() < sizeof(T))
    throw RuntimeError("bad-message", "a unit of work ends " + std::to_string(sizeof(T) - in.size()) +
                                          " bytes early");
  T v;
  std::memcpy(&v, in.data(), sizeof(T));
  in = in.subspan(sizeof(T));
  return v;
}

}  // namespace

void encode_unit(const Task& task, std::vector<std::byte>& out) {
  put<std::uint32_t>(out, 0);
  detail::encode_task(task, out);
}

void encode_unit(const detail::ExecPlan& plan, std::uint32_t u, std::vector<std::byte>& out,
                 std::vector<Value>& attachments) {
  if (plan.first_step[u] == detail::ExecPlan::kPlain) {
    put<std::uint32_t>(out, 0);
    detail::encode_task(*plan.task[u], out, &attachments);
    return;
  }
  put<std::uint32_t>(out, plan.nsteps[u]);
  for (std::uint32_t s = 0; s < plan.nsteps[u]; ++s) {
    const detail::Step& step = plan.steps[plan.first_step[u] + s];
    put<std::uint32_t>(out, step.nargs);
    for (std::uint32_t a = 0; a < step.nargs; ++a) {
      const detail::StepArg& arg = plan.step_args[step.args_begin + a];
      put<std::uint32_t>(out, arg.index);
      put<std::uint8_t>(out, arg.local ? 1 : 0);
    }
    detail::encode_task(*step.task, out, &attachments);
  }
}

UnitProgram::UnitProgram(std::span<const std::byte> wire, std::span<Value> attachments) {
  auto nsteps = get<std::uint32_t>(wire);
  if (nsteps == 0) {
    steps_.push_back(Step{detail::decode_task(wire, attachments), 0, 0});
  } else {
    plain_ = false;
    steps_.reserve(nsteps);
    for (std::uint32_t s = 0; s < nsteps; ++s) {
      auto nargs = get<std::uint32_t>(wire);
      if (nargs > wire.size() / 5)
        throw RuntimeError("bad-message", "a fused unit's step claims " + std::to_string(nargs) +
                                              " arguments, more than its bytes hold");
      auto begin = static_cast<std::uint32_t>(args_.size());
      for (std::uint32_t a = 0; a < nargs; ++a) {
        auto index = get<std::uint32_t>(wire);
        bool local = get<std::uint8_t>(wire) != 0;
        if (local && index >= s)
          throw RuntimeError("bad-message", "step " + std::to_string(s) + " of a fused unit reads step " +
                                                std::to_string(index) + ", which does not run before it");
        args_.push_back(detail::StepArg{index, local});
      }
      steps_.push_back(Step{detail::decode_task(wire, attachments), begin, nargs});
    }
  }
  if (!wire.empty())
    throw RuntimeError("bad-message", "a unit of work has " + std::to_string(wire.size()) +
                                          " bytes left over after its tasks");
}

Value UnitProgram::run(std::span<const Value* const> inputs) const {
  if (plain_) {
    if (inputs.size() != steps_[0].task->dependencies().size())
      throw RuntimeError("bad-message", "task '" + key().str() + "' takes " +
                                            std::to_string(steps_[0].task->dependencies().size()) +
                                            " inputs, " + std::to_string(inputs.size()) + " were given");
    return detail::run_task(*steps_[0].task, inputs);
  }
  std::vector<Value> locals(steps_.size());
  std::vector<const Value*> args;
  for (std::size_t s = 0; s < steps_.size(); ++s) {
    const Step& step = steps_[s];
    args.clear();
    for (std::uint32_t a = 0; a < step.nargs; ++a) {
      const detail::StepArg& src = args_[step.args_begin + a];
      if (!src.local && src.index >= inputs.size())
        throw RuntimeError("bad-message", "a fused unit reads input " + std::to_string(src.index) +
                                              " of " + std::to_string(inputs.size()));
      args.push_back(src.local ? &locals[src.index] : inputs[src.index]);
    }
    locals[s] = detail::run_task(*step.task, args);
  }
  return std::move(locals.back());
}

}  // namespace weft::dist
