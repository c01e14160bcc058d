/**
 * steplog in an Effect program: fits y = 2x + 1 with gradient descent and logs the loss and the
 * parameters at every step. The run opens when `Steplog.layer` is built and finishes (summary and
 * exit record written) when the program's scope closes, Ctrl-C included.
 *
 *   npm run build && npx tsx examples/effect-train.ts
 *
 * The run is recorded offline under ./steplog (or STEPLOG_DIR); the last line says how to upload it.
 */
import { NodeRuntime } from "@effect/platform-node"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { Steplog } from "steplog/effect"

const config = { learningRate: 0.5, steps: 200, points: 32 }

/** The data: x evenly spaced in [0, 1], y = 2x + 1. */
const xs = Array.from({ length: config.points }, (_, i) => i / (config.points - 1))
const ys = xs.map((x) => 2 * x + 1)

/** One step of gradient descent on the mean squared error of y ≈ w·x + b. */
const descend = (w: number, b: number) => {
  let loss = 0
  let dw = 0
  let db = 0
  for (let i = 0; i < xs.length; i++) {
    const error = w * xs[i]! + b - ys[i]!
    loss += error * error
    dw += 2 * error * xs[i]!
    db += 2 * error
  }
  const n = xs.length
  return { loss: loss / n, w: w - (config.learningRate * dw) / n, b: b - (config.learningRate * db) / n }
}

const train = Effect.gen(function* () {
  yield* Steplog.updateConfig({ model: "linear", objective: "mean squared error" })
  let w = 0
  let b = 0
  let best = Number.POSITIVE_INFINITY
  for (let step = 0; step < config.steps; step++) {
    const next = descend(w, b)
    w = next.w
    b = next.b
    best = Math.min(best, next.loss)
    // Nested objects become "params/w" and "params/b" in the run's history.
    yield* Steplog.log({ loss: next.loss, params: { w, b } })
    if (step % 50 === 0) yield* Console.log(`step ${step}: loss ${next.loss.toExponential(3)}`)
  }
  yield* Steplog.setSummary({ bestLoss: best, fitted: `y = ${w.toFixed(4)}x + ${b.toFixed(4)}` })
  const summary = yield* Steplog.summary
  yield* Console.log(`fitted y = ${w.toFixed(4)}x + ${b.toFixed(4)}; summary:`, summary)
  // Finishing here (rather than when the scope closes) gives back where the run is stored.
  const result = yield* Steplog.finish()
  if (!result.uploaded) yield* Console.log(result.hint)
})

train.pipe(
  Effect.provide(Steplog.layer({ project: "effect-example", mode: "offline", config, tags: ["example", "effect"] })),
  NodeRuntime.runMain
)
