"""course: the reference library of the backpropagation teaching kit.

Modules, one lecture concept each:

- :mod:`course.neuron`: the artificial neuron, the perceptron, logistic regression
- :mod:`course.activations`: activation functions and their derivatives
- :mod:`course.graph`: scalar computational graphs, gates and the ``Value`` autograd node
- :mod:`course.layers`: layers with forward/backward, ``Parameter``, ``Sequential``
- :mod:`course.losses`: losses and regularisers
- :mod:`course.gradcheck`: centred differences, relative error, layer/loss checkers
- :mod:`course.optim`: optimisers and learning-rate schedules
- :mod:`course.train`: minibatches, the fit loop, accuracy
- :mod:`course.network`: a two-layer network written out by hand (the MLP assignment's reference)
- :mod:`course.data`: small datasets shipped inside the package
- :mod:`course.plot`: the pictures
- :mod:`course.exercises`: the catalogue of graded exercises and ``check()``
"""

from . import activations, data, gradcheck, graph, layers, losses, network, neuron, optim, plot, train
from .gradcheck import (
    GradCheckError,
    GradCheckReport,
    check_elementwise,
    check_layer,
    check_loss,
    numerical_gradient,
    relative_error,
)
from .graph import AddGate, MaxGate, MulGate, Value
from .layers import (
    ELU,
    Layer,
    LeakyReLU,
    Linear,
    LinearSigmoid,
    Maxout,
    Parameter,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)
from .losses import (
    L1,
    L2,
    MSE,
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
    ElasticNet,
    MulticlassSVM,
    SoftmaxCrossEntropy,
)
from .network import TwoLayerNet
from .neuron import LogisticRegression, Neuron, Perceptron
from .optim import SGD, Adam, CosineDecay, Momentum, RMSProp, StepDecay
from .train import History, accuracy, fit, minibatches

__version__ = "0.1.0"

__all__ = [
    "ELU",
    "L1",
    "L2",
    "MSE",
    "SGD",
    "Adam",
    "AddGate",
    "BinaryCrossEntropy",
    "BinaryCrossEntropyWithLogits",
    "CosineDecay",
    "ElasticNet",
    "GradCheckError",
    "GradCheckReport",
    "History",
    "Layer",
    "LeakyReLU",
    "Linear",
    "LinearSigmoid",
    "LogisticRegression",
    "MaxGate",
    "Maxout",
    "Momentum",
    "MulGate",
    "MulticlassSVM",
    "Neuron",
    "Parameter",
    "Perceptron",
    "RMSProp",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "SoftmaxCrossEntropy",
    "StepDecay",
    "Tanh",
    "TwoLayerNet",
    "Value",
    "accuracy",
    "activations",
    "check_elementwise",
    "check_layer",
    "check_loss",
    "data",
    "fit",
    "gradcheck",
    "graph",
    "layers",
    "losses",
    "minibatches",
    "network",
    "neuron",
    "numerical_gradient",
    "optim",
    "plot",
    "relative_error",
    "train",
]
