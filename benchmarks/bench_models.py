"""Timings of the surrogate networks on the CPU (n_seg = 913, 8 x 1000 bins)."""
import os, time, torch, numpy as np
from lfp_surrogate.models import ModelConfig, build_model, predict_stream, InputProjection
import sys; torch.set_num_threads(int(sys.argv[1]))
def tm(f, n=7):
    f(); ts = []
    for _ in range(n):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    ts.sort(); return ts[0] * 1e3, ts[len(ts) // 2] * 1e3
print("load average", os.getloadavg())
torch.manual_seed(0)
B, S, T = 8, 913, 1000
x = torch.poisson(torch.full((B, 2, S, T), 0.004))
xs = x.to_sparse()
print(f"input density {(x > 0).float().mean():.4f}, nnz {xs._nnz()}")
proj = InputProjection(S, 128)
with torch.no_grad():
    print("projection dense  fwd min/median ms: %.1f / %.1f" % tm(lambda: proj(x)))
    print("projection sparse fwd min/median ms: %.1f / %.1f" % tm(lambda: proj(xs)))
    print("dense->sparse conversion ms: %.1f / %.1f" % tm(lambda: x.to_sparse(), n=3))
print("projection dense  fwd+bwd ms: %.1f / %.1f" % tm(lambda: proj(x).sum().backward()))
print("projection sparse fwd+bwd ms: %.1f / %.1f" % tm(lambda: proj(xs).sum().backward()))
regions = np.repeat(np.arange(6), [1, 40, 300, 60, 250, 262])
for arch in ["mh", "mmoe", "mmoeex"]:
    m = build_model(ModelConfig(n_seg=S, arch=arch, task_of_seg=regions))
    n = m.n_parameters
    nb = sum(p.numel() for p in m.backbone.parameters()); ni = m.backbone.input.weight.numel() + 128
    m.eval()
    with torch.no_grad():
        d = tm(lambda: m(x), n=5); s = tm(lambda: m(xs), n=5)
        st = tm(lambda: predict_stream(m, x, 100), n=3)
    m.train()
    opt = torch.optim.Adam(m.parameters(), lr=1e-4)
    def step():
        out = m(x); loss = out.vmem.square().mean() + sum(out.aux_losses.values(), torch.zeros(()))
        opt.zero_grad(); loss.backward(); opt.step()
    tr = tm(step, n=3)
    print(f"{arch}: {n} params ({4*n/1e6:.2f} MB f32; backbone {nb}, of which input {ni}; head {n-nb}); RF {m.receptive_field} bins;"
          f" eval 8x1000 dense {d[0]:.0f}/{d[1]:.0f} ms, sparse {s[0]:.0f}/{s[1]:.0f} ms; stream chunk 100 {st[0]:.0f}/{st[1]:.0f} ms; train step {tr[0]:.0f}/{tr[1]:.0f} ms")
print("load average", os.getloadavg())
