"""``compare``: an entry that continues another's checkpoint reads the traces in its own order.
With its parent's order, ``sft+sft`` re-read the first traces its parent saw and never reached the
rest; siblings on one parent share an order so their paired comparison does not move with it."""

from __future__ import annotations

from pathlib import Path

import torch

from reasondistill import compare
from reasondistill.config import Recipe, TrainConfig, build
from reasondistill.layout import Layout
from reasondistill.train.base import training_args


def plan(*entries):
    recipe = build(Recipe, {"compare": {"entries": list(entries), "max_steps": 4}})
    return recipe, {e.name: e for e in compare.entries(recipe)}


def test_each_link_of_an_init_chain_gets_its_own_order_and_siblings_share_one():
    recipe, by_name = plan({"name": "sft"}, {"name": "sft+sft", "init": "sft"},
                           {"name": "sft+redi", "method": "redi", "init": "sft"},
                           {"name": "sft+sft+sft", "init": "sft+sft"})
    layout = Layout(Path("run"))
    for seed in (0, 2):
        seeds = {n: compare.train_cfg(recipe, e, layout, seed).data_seed for n, e in by_name.items()}
        assert seeds == {"sft": None, "sft+sft": seed + 1000, "sft+redi": seed + 1000, "sft+sft+sft": seed + 2000}


def test_an_implicit_sft_start_counts_as_one_link():
    recipe, by_name = plan({"name": "gkd", "method": "gkd", "objective": {"teacher": "t"}})
    assert by_name["gkd"].init == "sft"
    assert compare.chain_depth(recipe, by_name["gkd"]) == 1


def first_batches(cfg: TrainConfig, tmp_path: Path, n: int = 2) -> list[list[int]]:
    from transformers import Trainer

    args = training_args(cfg, tmp_path, use_bf16=False, device="cpu", remove_unused_columns=False)
    data = [{"idx": i} for i in range(64)]
    trainer = Trainer(model=torch.nn.Linear(1, 1), args=args, train_dataset=data,
                      data_collator=lambda rows: {"idx": torch.tensor([r["idx"] for r in rows])})
    batches = iter(trainer.get_train_dataloader())
    return [next(batches)["idx"].tolist() for _ in range(n)]


def test_the_chained_order_is_the_trainers_order_and_differs_from_the_parents(tmp_path):
    recipe, by_name = plan({"name": "sft"}, {"name": "sft+sft", "init": "sft"})
    layout = Layout(tmp_path)
    parent = compare.train_cfg(recipe, by_name["sft"], layout, 1)
    child = compare.train_cfg(recipe, by_name["sft+sft"], layout, 1)
    assert first_batches(parent, tmp_path / "a") == first_batches(parent, tmp_path / "b")  # seeded: repeatable
    assert first_batches(child, tmp_path / "c") != first_batches(parent, tmp_path / "d")


def test_an_entrys_own_budget_is_its_own_and_the_rest_share_compare_max_steps():
    """Entries own their options: ``train.max_steps`` (or ``epochs``) set on an entry is its budget,
    where ``compare.max_steps`` used to replace it without a word."""
    recipe, by_name = plan({"name": "sft"}, {"name": "short", "train": {"max_steps": 2}},
                           {"name": "epochs", "train": {"epochs": 3}}, {"name": "sft+sft", "init": "sft",
                                                                        "train": {"max_steps": 1}})
    cfgs = {n: compare.train_cfg(recipe, e, Layout(Path("run"))) for n, e in by_name.items()}
    assert {n: c.max_steps for n, c in cfgs.items()} == {"sft": 4, "short": 2, "epochs": -1, "sft+sft": 1}
    assert cfgs["epochs"].epochs == 3  # -1 steps: its epochs decide
