/**
 * A training script written the way a steplog user writes one: TensorFlow.js fits a small network
 * to handwritten digits, and every step's loss and accuracy go to `run.log()`.
 *
 *   npm run build && npx tsx examples/train.ts --lr 0.003 --hidden 64 --batch 32 --epochs 4 --seed 1
 */
import "@tensorflow/tfjs-backend-cpu"
import * as tf from "@tensorflow/tfjs-core"
import * as tfl from "@tensorflow/tfjs-layers"
import { parseArgs } from "node:util"
import { init } from "steplog"
import { loadDigits } from "./digits.js"

const { values: args } = parseArgs({
  options: { lr: { type: "string" }, hidden: { type: "string" }, batch: { type: "string" }, epochs: { type: "string" }, seed: { type: "string" } }
})
const positive = (name: keyof typeof args, fallback: number): number => {
  const value = Number(args[name] ?? fallback)
  if (!(value > 0)) throw new Error(`--${name} takes a positive number, not "${args[name]}"`)
  return value
}
const config = { lr: positive("lr", 0.003), hidden: positive("hidden", 64), batch: positive("batch", 32), epochs: positive("epochs", 4), seed: positive("seed", 1) }

// Production mode skips TensorFlow.js's debug checks (and its advice to install tfjs-node).
tf.enableProdMode()
const { train, test } = loadDigits(2560, 1000)

const model = tfl.sequential({
  layers: [
    tfl.layers.dense({ inputShape: [784], units: config.hidden, activation: "relu", kernelInitializer: tfl.initializers.heNormal({ seed: config.seed }) }),
    tfl.layers.dense({ units: 10, activation: "softmax", kernelInitializer: tfl.initializers.glorotNormal({ seed: config.seed }) })
  ]
})
model.compile({ optimizer: tf.train.adam(config.lr), loss: "categoricalCrossentropy", metrics: ["accuracy"] })

const run = await init({ project: "digits", name: `mlp-h${config.hidden}-lr${config.lr}`, config: { ...config, parameters: model.countParams() }, tags: ["mnist", "tfjs", "mlp"] })
let batches = 0
let bestValAcc = 0
await model.fit(train.images, train.labels, {
  epochs: config.epochs,
  batchSize: config.batch,
  validationData: [test.images, test.labels],
  callbacks: {
    // Steps 0, 1, 2, …: one a batch.
    onBatchEnd: async (_batch, logs) => {
      run.log({ loss: logs?.loss, acc: logs?.acc })
      batches++
    },
    onEpochEnd: async (epoch, logs) => {
      const val = { loss: logs?.val_loss ?? NaN, acc: logs?.val_acc ?? NaN }
      bestValAcc = Math.max(bestValAcc, val.acc)
      // At the epoch's last batch, whose row is written already: "val/loss" and "val/acc" are
      // stored at that step beside its "loss" and "acc" (history is kept per key).
      run.log({ val }, { step: batches - 1 })
      console.log(`${run.name} epoch ${epoch + 1}/${config.epochs}: val/loss ${val.loss.toFixed(3)}, val/acc ${val.acc.toFixed(3)}`)
    }
  }
})

run.summary.set({ best_val_acc: bestValAcc })
const result = await run.finish()
console.log(`${run.name}: best val/acc ${bestValAcc.toFixed(3)}; ${result.uploaded ? `${result.records} records uploaded` : result.hint}`)
