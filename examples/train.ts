/**
 * A small training script written the way a steplog user writes one: a two-layer network learns
 * to separate two interleaved half-moons, and every step's loss and accuracy go to `run.log()`.
 *
 *   npm run build && npx tsx examples/train.ts
 */
import { init } from "steplog"

const config = { learningRate: 0.3, hidden: 16, steps: 3000, points: 400, seed: 7 }
const run = await init({ project: "moons", config, tags: ["example", "mlp"] })

// A seeded generator, so every run of this script sees the same data.
let state = config.seed
const random = () => ((state = (state * 1664525 + 1013904223) >>> 0) / 2 ** 32)
const gaussian = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random())

// Two half-moons with noise: label 0 on the upper arc, 1 on the lower one.
const data = Array.from({ length: config.points }, (_, i) => {
  const label = i % 2
  const angle = Math.PI * random()
  const x = label === 0 ? Math.cos(angle) : 1 - Math.cos(angle)
  const y = label === 0 ? Math.sin(angle) : 0.5 - Math.sin(angle)
  return { input: [x + 0.1 * gaussian(), y + 0.1 * gaussian()] as const, label }
})
const [train, validation] = [data.slice(0, 320), data.slice(320)]

const H = config.hidden
const w1 = Array.from({ length: H }, () => [gaussian(), gaussian()])
const b1 = new Array<number>(H).fill(0)
const w2 = Array.from({ length: H }, () => gaussian() / Math.sqrt(H))
let b2 = 0

const forward = (input: readonly [number, number]) => {
  const hidden = w1.map((w, j) => Math.tanh(w[0]! * input[0] + w[1]! * input[1] + b1[j]!))
  const logit = hidden.reduce((sum, h, j) => sum + h * w2[j]!, b2)
  return { hidden, p: 1 / (1 + Math.exp(-logit)) }
}

const evaluate = (set: typeof data) => {
  let loss = 0
  let correct = 0
  for (const { input, label } of set) {
    const { p } = forward(input)
    loss -= label === 1 ? Math.log(p + 1e-12) : Math.log(1 - p + 1e-12)
    if ((p > 0.5 ? 1 : 0) === label) correct++
  }
  return { loss: loss / set.length, acc: correct / set.length }
}

for (let step = 0; step < config.steps; step++) {
  // One full-batch gradient step of binary cross-entropy.
  const gw1 = w1.map(() => [0, 0])
  const gb1 = new Array<number>(H).fill(0)
  const gw2 = new Array<number>(H).fill(0)
  let gb2 = 0
  for (const { input, label } of train) {
    const { hidden, p } = forward(input)
    const dlogit = (p - label) / train.length
    gb2 += dlogit
    hidden.forEach((h, j) => {
      gw2[j]! += dlogit * h
      const dh = dlogit * w2[j]! * (1 - h * h)
      gw1[j]![0]! += dh * input[0]
      gw1[j]![1]! += dh * input[1]
      gb1[j]! += dh
    })
  }
  w1.forEach((w, j) => {
    w[0]! -= config.learningRate * gw1[j]![0]!
    w[1]! -= config.learningRate * gw1[j]![1]!
    b1[j]! -= config.learningRate * gb1[j]!
    w2[j]! -= config.learningRate * gw2[j]!
  })
  b2 -= config.learningRate * gb2

  const metrics = { train: evaluate(train), lr: config.learningRate }
  if (step % 100 === 0) run.log({ ...metrics, validation: evaluate(validation) })
  else run.log(metrics)
}

run.summary.set({ final_validation_acc: evaluate(validation).acc })
const result = await run.finish()
console.log(`run ${run.name} (${run.id}) logged ${result.records} records to ${run.dir}`)
