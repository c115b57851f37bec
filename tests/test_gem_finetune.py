"""Gem-Miner's fine-tuning default: the paper's SGD recipe with batch norm, the model's own
training config without it (measured in ``benchmarks/learned_conv.py --part finetune``)."""

import torch

from ticketlab.data import load_dataset
from ticketlab.miners.base import MiningContext
from ticketlab.miners.gem_miner import GemMiner
from ticketlab.models import create_model, prunable_parameters
from ticketlab.retraining import resolve_train_config
from ticketlab.training import TrainConfig, total_iterations


def _ctx(model, own=None, epochs=4):
    data = load_dataset("digits", seed=0)
    net = create_model(model, data.spec, seed=0)
    own = own or resolve_train_config(model, "digits")
    return MiningContext(net, prunable_parameters(net), data.spec, data, torch.device("cpu"), 0, torch.Generator(),
                         train_config=own, train_epochs=epochs, schedule=[0.1])


def test_batch_norm_net_gets_the_paper_recipe():
    ctx = _ctx("resnet20")
    cfg = GemMiner().ticket_train_config(ctx)
    total = total_iterations(cfg, ctx.data)  # 4 epochs of batch 128
    assert (cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.batch_size, cfg.epochs) == ("sgd", 0.01, 0.9, 1e-4, 128, 4)
    assert cfg.schedule == "step" and cfg.milestones == (int(0.53 * total), int(0.8 * total))


def test_batch_norm_free_nets_get_their_own_config_for_the_score_epochs():
    for model, lr in (("conv4", 3e-4), ("lenet_300_100", 1.2e-3)):
        cfg = GemMiner().ticket_train_config(_ctx(model))
        assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.schedule, cfg.epochs, cfg.iterations) == (
            "adam", lr, 60, "constant", 4, None), model
    # iteration-indexed fields of the model's config follow the new length: 100 iterations of
    # batch 60 with milestones 50, 80 and warm-up 10, fine-tuned for 4 epochs (4 * 22 = 88 iterations)
    own = TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, batch_size=60, iterations=100, schedule="step",
                      milestones=(50, 80), warmup_iterations=10)
    ctx = _ctx("lenet_300_100", own)
    cfg = GemMiner().ticket_train_config(ctx)
    n = total_iterations(cfg, ctx.data)
    assert cfg.iterations is None and cfg.epochs == 4 and n == 4 * total_iterations(
        TrainConfig(batch_size=60, epochs=1), ctx.data)
    assert cfg.milestones == (50 * n // 100, 80 * n // 100) and cfg.warmup_iterations == 10 * n // 100
    assert GemMiner(finetune=False).ticket_train_config(ctx) is None
