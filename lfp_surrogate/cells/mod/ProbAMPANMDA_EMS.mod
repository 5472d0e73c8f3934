COMMENT
Name-only placeholder so that Blue Brain cell templates, which mention this
synapse type, load with their synapses disabled. Never instantiated.
ENDCOMMENT
NEURON {
    POINT_PROCESS ProbAMPANMDA_EMS
}
