COMMENT
NMDA receptor synapse of lfp_surrogate: a difference of two exponentials
(rise tau1, decay tau2) times the voltage-dependent magnesium block of
Jahr & Stevens (1990), doi:10.1523/JNEUROSCI.10-09-03178.1990:

    B(v) = 1 / (1 + exp(-0.062 (/mV) * v) * mg / 3.57 (mM))

    i = g(t) * B(v) * (v - e)

Release is deterministic (no short-term plasticity). The NetCon weight is the
peak conductance in uS (the two-exponential kernel is normalised to a peak of 1).
ENDCOMMENT

NEURON {
    POINT_PROCESS LfpsNMDA
    RANGE tau1, tau2, e, mg, g, i
    NONSPECIFIC_CURRENT i
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
    (mM) = (milli/liter)
}

PARAMETER {
    tau1 = 2 (ms) <1e-9, 1e9>
    tau2 = 70 (ms) <1e-9, 1e9>
    e = 0 (mV)
    mg = 1 (mM)
}

ASSIGNED {
    v (mV)
    i (nA)
    g (uS)
    factor
}

STATE {
    A (uS)
    B (uS)
}

INITIAL {
    LOCAL tpeak
    if (tau1 / tau2 > 0.9999) {
        tau1 = 0.9999 * tau2
    }
    A = 0
    B = 0
    tpeak = (tau1 * tau2) / (tau2 - tau1) * log(tau2 / tau1)
    factor = 1 / (exp(-tpeak / tau2) - exp(-tpeak / tau1))
}

BREAKPOINT {
    SOLVE kinetics METHOD cnexp
    g = B - A
    i = g * mgblock(v) * (v - e)
}

DERIVATIVE kinetics {
    A' = -A / tau1
    B' = -B / tau2
}

FUNCTION mgblock(v (mV)) {
    mgblock = 1 / (1 + exp(-0.062 (/mV) * v) * mg / 3.57 (mM))
}

NET_RECEIVE(weight (uS)) {
    A = A + weight * factor
    B = B + weight * factor
}
