// The benchmark row: ten full-precision doubles, built fresh for each call. A plain module, so that
// the trainer processes of bench/concurrent.ts (plain Node, no TypeScript loader) log the very row
// the other benchmarks do.
export const row = (step) => ({
  step,
  loss: Math.random(),
  acc: Math.random(),
  lr: Math.random(),
  grad_norm: Math.random(),
  val_loss: Math.random(),
  val_acc: Math.random(),
  epoch: Math.random(),
  tokens_per_s: Math.random(),
  gpu_mem_gb: Math.random()
})
