"""Mutation check: break the library on purpose, one way at a time, and see
whether the test suite notices.

Each mutation below is an exact snippet of the package's source, its
replacement and what it breaks. For each one the script copies the repository
(the files git tracks plus untracked ones it does not ignore) to a temporary
directory, applies the mutation there -- the working tree is never modified --
and runs the test modules most likely to catch it with ``pytest -x``, then
prints a table::

    mutation | caught? | first failing test

A snippet that no longer matches its file (after a refactor) is reported as
``STALE``: when it is found exactly once in another file of the package it is
applied there and reported as ``moved to <file>`` so the check still runs, and
the entry should be updated; when it is found nowhere, or more than once, the
mutation is not run. The exit status is 0 only when every mutation applied and
was caught.

Usage::

    python benchmarks/mutation_check.py            # every mutation, ~5-15 min
    python benchmarks/mutation_check.py --list     # the mutations, no run
    python benchmarks/mutation_check.py --only noise_variance_doubled precision_ignored
    python benchmarks/mutation_check.py --full     # the whole suite per mutation
    python benchmarks/mutation_check.py --tests tests/test_base.py  # other tests

Run it with the Python that runs the tests (it starts ``sys.executable -m
pytest`` in the copy, whose package then comes first on ``sys.path``).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "sklearn_aae"

# The modules that check behaviour, fastest to fail first; -x stops at the first
# failure, so a caught mutation costs seconds. The slow estimator checks
# (test_common.py), the kernel and prior maths and the fuzzing are left to
# --full.
DEFAULT_TESTS = (
    "tests/test_behaviour.py",
    "tests/test_likelihood.py",
    "tests/test_scoring.py",
    "tests/test_labels.py",
    "tests/test_networks.py",
    "tests/test_gpu_path.py",
    "tests/test_base.py",
    "tests/test_mmd.py",
    "tests/test_adversarial.py",
    "tests/test_tasks.py",
)


def _first(*paths):
    """The default selection with ``paths`` moved to the front (the modules
    that should catch the mutation run first; -x stops there)."""
    return (*paths, *(t for t in DEFAULT_TESTS if t not in paths))


SCORING_TESTS = _first("tests/test_likelihood.py", "tests/test_scoring.py")
TASK_TESTS = _first("tests/test_tasks.py")


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # relative to the repository root
    old: str
    new: str
    description: str
    tests: tuple = field(default=DEFAULT_TESTS)


MUTATIONS = [
    Mutation(
        "noise_variance_doubled",
        "sklearn_aae/_base.py",
        "self.noise_variance_ = max(float(sq) / count, _NOISE_VARIANCE_FLOOR)",
        "self.noise_variance_ = max(2 * float(sq) / count, _NOISE_VARIANCE_FLOOR)",
        "noise_variance_ is no longer the residual variance of the training rows",
    ),
    Mutation(
        "scoring_past_first_chunk",
        "sklearn_aae/_scoring.py",
        "out = [_score_chunk(x, model, z_prior, eps) for x in data.chunks(rows)]",
        """out = [
        _score_chunk(
            x,
            model,
            z_prior,
            eps if i == 0 else torch.randn(eps.shape, generator=g).to(eps),
        )
        for i, x in enumerate(data.chunks(rows))
    ]""",
        "rows past the first scoring chunk get other importance samples",
        SCORING_TESTS,
    ),
    Mutation(
        "precision_ignored",
        "sklearn_aae/_devices.py",
        """    if precision == "bfloat16":
        return torch.autocast(""",
        """    if False:
        return torch.autocast(""",
        "precision='bfloat16' trains in float32",
    ),
    Mutation(
        "warm_start_ignored",
        "sklearn_aae/_base.py",
        'fresh = not hasattr(self, "encoder_") or not (incremental or self.warm_start)',
        'fresh = not hasattr(self, "encoder_") or not incremental',
        "fit with warm_start=True starts afresh",
    ),
    Mutation(
        "warm_start_reinitialises_weights",
        "sklearn_aae/_base.py",
        """            self._check_warm_start(hidden)
""",
        """            self._check_warm_start(hidden)
            self.encoder_, self.decoder_ = build_networks(
                self.n_features_in_,
                self.n_components,
                hidden,
                self.activation,
                self.encoder,
                init_seed,
                heads=self._heads(),
            )
""",
        "warm start and partial_fit keep the counters but restart from new weights",
    ),
    Mutation(
        "partial_fit_resets_optimizer",
        "sklearn_aae/_base.py",
        "if fresh or not incremental or previous_device != self.device_:",
        "if True:",
        "partial_fit drops the optimisers' state at every call",
    ),
    Mutation(
        "regularizer_without_gradient",
        "sklearn_aae/_base.py",
        "reg = regularizer(z, yb)",
        "reg = regularizer(z.detach(), yb)",
        "the regulariser is computed and recorded but does not shape the codes",
    ),
    Mutation(
        "reg_weight_ignored_in_loss",
        "sklearn_aae/_base.py",
        'losses["loss"] = recon + self.reg_weight * reg["regularization"]',
        'losses["loss"] = recon + (1.0 if train else self.reg_weight) '
        '* reg["regularization"]',
        "the training loss adds the regulariser with weight 1",
    ),
    Mutation(
        "reg_weight_ignored_in_validation",
        "sklearn_aae/_base.py",
        'losses["loss"] = recon + self.reg_weight * reg["regularization"]',
        'losses["loss"] = recon + (self.reg_weight if train else 1.0) '
        '* reg["regularization"]',
        "the validation loss adds the regulariser with weight 1",
    ),
    Mutation(
        "discriminator_steps_ignored",
        "sklearn_aae/_adversarial.py",
        "for _ in range(self.steps):",
        "for _ in range(1):",
        "one discriminator update per batch whatever discriminator_steps",
    ),
    Mutation(
        "instance_noise_ignored",
        "sklearn_aae/_adversarial.py",
        "        if self.noise == 0.0:\n            return Z",
        "        if True:\n            return Z",
        "instance_noise adds no noise",
    ),
    Mutation(
        "discriminator_learning_rate_ignored",
        "sklearn_aae/_adversarial.py",
        "self.discriminator_learning_rate,",
        "1e-3,",
        "the discriminator always learns at 1e-3",
    ),
    Mutation(
        "generator_loss_sign_flipped",
        "sklearn_aae/_adversarial.py",
        "g_loss = self._mean(softplus(-self._generator_logits(self._inputs(Z, y))), w)",
        "g_loss = self._mean(softplus(self._generator_logits(self._inputs(Z, y))), w)",
        "the encoder learns to look unlike the prior",
    ),
    Mutation(
        "mmd_kernel_ignored",
        "sklearn_aae/_mmd.py",
        """            generator,
            self.kernel,
""",
        """            generator,
            "rbf",
""",
        "kernel='imq' trains with the RBF kernel",
    ),
    Mutation(
        "transform_samples_the_gaussian_code",
        "sklearn_aae/_base.py",
        "out = [self.encoder_.mean(xb).cpu() for xb in data.chunks()]",
        """out = [
            (
                self.encoder_.sample(xb, None)
                if self.encoder == "gaussian"
                else self.encoder_.mean(xb)
            ).cpu()
            for xb in data.chunks()
        ]""",
        "transform returns a draw from q(z|x) instead of its mean",
    ),
    Mutation(
        "gaussian_encoder_not_sampled_in_training",
        "sklearn_aae/_networks.py",
        "return mean + torch.exp(0.5 * log_var) * eps",
        "return mean",
        "encoder='gaussian' trains on the mean code; its variance is never learnt",
    ),
    Mutation(
        "universal_encoder_noise_ignored",
        "sklearn_aae/_networks.py",
        "return self(X, eps.to(X.dtype))",
        "return self(X, torch.zeros_like(eps).to(X.dtype))",
        "encoder='universal' is fed zeros instead of noise in training",
    ),
    Mutation(
        "sample_ignores_random_state",
        "sklearn_aae/_base.py",
        """        g = torch.Generator().manual_seed(_seed_from(random_state))
        tprior = self._tensor_prior(""",
        """        g = torch.Generator().manual_seed(0)
        tprior = self._tensor_prior(""",
        "sample draws the same codes whatever random_state",
        _first("tests/test_base.py"),
    ),
    Mutation(
        "inverse_transform_dtype",
        "sklearn_aae/_base.py",
        "return self._decode(Z, Z.dtype)",
        "return self._decode(Z, np.float64)",
        "inverse_transform of float32 codes returns float64",
        _first("tests/test_base.py"),
    ),
    Mutation(
        "batches_not_shuffled",
        "sklearn_aae/_base.py",
        "torch.randperm(n, generator=generator, device=train_idx.device)",
        "torch.arange(n, device=train_idx.device)",
        "every epoch visits the rows in the same order",
    ),
    Mutation(
        "batch_size_ignored",
        "sklearn_aae/_base.py",
        "perm.tensor_split(_n_batches(n, self.batch_size))",
        "perm.tensor_split(_n_batches(n, 128))",
        "batches of 128 rows whatever batch_size",
    ),
    Mutation(
        "learning_rate_init_ignored",
        "sklearn_aae/_base.py",
        'return {"_optimizer": (params, self.learning_rate_init)}',
        'return {"_optimizer": (params, 1e-3)}',
        "the autoencoder always learns at 1e-3",
    ),
    Mutation(
        "activation_ignored",
        "sklearn_aae/_networks.py",
        "layers.append(ACTIVATIONS[activation]())",
        "layers.append(nn.ReLU())",
        "every network uses ReLU whatever activation",
    ),
    Mutation(
        "score_without_prior_density",
        "sklearn_aae/_scoring.py",
        "log_w = log_p + log_lik - log_r",
        "log_w = log_lik - log_r",
        "importance weights leave out p(z)",
        SCORING_TESTS,
    ),
    Mutation(
        "score_proposal_without_defensive_share",
        "sklearn_aae/_scoring.py",
        """    share = z_prior.shape[1] / S
    log_r = torch.logaddexp(math.log(share) + log_p, math.log1p(-share) + log_q)""",
        """    share = z_prior.shape[1] / S
    log_r = log_q""",
        "importance weights use the Gaussian proposal's density for the prior draws",
        SCORING_TESTS,
    ),
    Mutation(
        "score_without_gauss_newton_steps",
        "sklearn_aae/_scoring.py",
        "_NEWTON_STEPS = 2",
        "_NEWTON_STEPS = 0",
        "the proposal is centred at its start, not moved towards the posterior mode",
        SCORING_TESTS,
    ),
    Mutation(
        "score_proposal_starts_only_at_the_code",
        "sklearn_aae/_scoring.py",
        "mu, Lh = _gauss_newton_proposal(x, z0, model, starts=z_prior)",
        "mu, Lh = _gauss_newton_proposal(x, z0, model)",
        "the mode search starts at the encoder's code only, not the best prior draw",
        SCORING_TESTS,
    ),
    Mutation(
        "score_line_search_takes_full_steps",
        "sklearn_aae/_scoring.py",
        "            better = fc[rows, best] > f\n",
        "            better, best = torch.ones_like(f, dtype=torch.bool), best * 0\n",
        "every Gauss-Newton step is taken whole, even off the support or downhill",
        SCORING_TESTS,
    ),
    Mutation(
        "early_stopping_keeps_last_weights",
        "sklearn_aae/_base.py",
        """        if run.best_state is not None:
            self._load_state(run.best_state)""",
        """        if False:
            self._load_state(run.best_state)""",
        "early stopping keeps the last epoch's weights, not the best",
    ),
    # New code since the split of _base.py: labels, discrete heads and
    # scoring, the GPU fixes.
    Mutation(
        "mmd_labels_ignored",
        "sklearn_aae/_mmd.py",
        """        if y is None or not self.n_classes:
            return self._mmd2(Z)
        return self._mmd2_by_class(Z, y)""",
        """        return self._mmd2(Z)""",
        "MMDAutoencoder matches every code to the whole prior, labelled or not",
        _first("tests/test_labels.py"),
    ),
    Mutation(
        "block_head_softmax_dropped",
        "sklearn_aae/_networks.py",
        "block = torch.softmax(block, dim=-1)",
        "block = block",
        "a one-hot block's codes are raw logits, not on the simplex",
        _first("tests/test_networks.py", "tests/test_labels.py"),
    ),
    Mutation(
        "discrete_enumeration_weight_dropped",
        "sklearn_aae/_scoring.py",
        "log_w = log_pmf.expand(n, -1)",
        "log_w = torch.zeros_like(log_pmf).expand(n, -1)",
        "enumerated discrete configurations are weighted 1, not by their prior pmf",
        _first("tests/test_scoring.py", "tests/test_likelihood.py"),
    ),
    Mutation(
        "network_init_reseeds_gpus",
        "sklearn_aae/_networks.py",
        "torch.default_generator.manual_seed(seed)",
        "torch.manual_seed(seed)",
        "building the networks reseeds every CUDA device (torch.manual_seed)",
        _first("tests/test_gpu_path.py"),
    ),
    Mutation(
        "prior_gradient_swallows_runtime_errors",
        "sklearn_aae/_scoring.py",
        """    with torch.enable_grad():
        z0g = z0.detach().requires_grad_(True)
        return torch.autograd.grad(tprior.log_prob(z0g).sum(), z0g)[0]""",
        """    try:
        with torch.enable_grad():
            z0g = z0.detach().requires_grad_(True)
            return torch.autograd.grad(tprior.log_prob(z0g).sum(), z0g)[0]
    except RuntimeError:
        return torch.zeros_like(z0)""",
        "a RuntimeError (CUDA out of memory) in the prior's gradient is swallowed",
        _first("tests/test_gpu_path.py", "tests/test_scoring.py"),
    ),
    # Dense training data too large for the device: streamed, in batch order.
    Mutation(
        "too_large_dense_data_copied_whole",
        "sklearn_aae/_data.py",
        "            if not _fits_on_device(needed, free):",
        "            if False:",
        "dense data larger than the device's free memory are still copied whole",
        _first("tests/test_data.py", "tests/test_gpu_path.py"),
    ),
    Mutation(
        "streamed_dense_batches_sorted",
        "sklearn_aae/_data.py",
        "                xb = self._rows_to_device(self.X[idx])",
        "                xb = self._rows_to_device(self.X[np.sort(idx)])",
        "dense rows streamed for lack of device memory come in sorted order, so the "
        "fit differs from the whole copy's",
        _first("tests/test_gpu_path.py", "tests/test_data.py"),
    ),
    # Saved state, partial_fit per block, Dask (issue 16).
    Mutation(
        "partial_fit_noise_variance_doubled",
        "sklearn_aae/_base.py",
        "self.noise_variance_ = max(run.reconstruction, _NOISE_VARIANCE_FLOOR)",
        "self.noise_variance_ = max(2 * run.reconstruction, _NOISE_VARIANCE_FLOOR)",
        "after partial_fit, noise_variance_ is not the block's training residual",
        _first("tests/test_behaviour.py"),
    ),
    Mutation(
        "partial_fit_extra_pass",
        "sklearn_aae/_base.py",
        "if run.incremental and run.reconstruction is not None:",
        "if False:",
        "partial_fit makes an extra no-grad pass over its block again",
        _first("tests/test_behaviour.py"),
    ),
    Mutation(
        "saved_optimizer_state_dropped",
        "sklearn_aae/_base.py",
        """        if optimizers:
            state[OPTIMIZERS_KEY] = optimizers""",
        """        if False:
            state[OPTIMIZERS_KEY] = optimizers""",
        "a model saved between partial_fit calls restarts Adam after loading",
        _first("tests/test_persistence.py", "tests/test_behaviour.py"),
    ),
    Mutation(
        "saved_weights_not_loaded",
        "sklearn_aae/_base.py",
        "setattr(self, name, load_arrays(module, weights[name], name))",
        "setattr(self, name, module)",
        "a loaded model has freshly initialised networks",
        _first("tests/test_persistence.py", "tests/test_base.py"),
    ),
    Mutation(
        "saved_state_format_not_checked",
        "sklearn_aae/_base.py",
        "            check_state_metadata(meta, type(self).__name__)\n",
        "",
        "a state of an unreadable format loads without a word",
        _first("tests/test_persistence.py"),
    ),
    Mutation(
        "dask_ml_placeholder_taken_for_labels",
        "sklearn_aae/_base.py",
        "        y = _no_dask_ml_placeholder(y)\n",
        "",
        "Incremental(...).fit(X) without y fails on dask-ml's ('', i) placeholder",
        _first("tests/test_dask.py"),
    ),
    Mutation(
        "forward_ad_unlocked",
        "sklearn_aae/_scoring.py",
        "    with _FORWARD_AD_LOCK:\n",
        "    if True:\n",
        "score_samples from several threads at once corrupts the forward-AD levels",
        _first("tests/test_scoring.py"),
    ),
    # The task estimators: semi-supervised classifiers and clusterers (_tasks.py).
    Mutation(
        "supervised_weight_ignored",
        "sklearn_aae/_tasks.py",
        '{"classification": (self.supervised_weight,',
        '{"classification": (1.0,',
        "the classifiers' cross-entropy has weight 1 whatever supervised_weight",
        TASK_TESTS,
    ),
    Mutation(
        "task_loss_not_added_to_objective",
        "sklearn_aae/_base.py",
        'losses["loss"] = losses["loss"] + weight * value',
        'losses["loss"] = losses["loss"]',
        "the cross-entropy is recorded in history_ but does not train the heads",
        TASK_TESTS,
    ),
    Mutation(
        "cross_entropy_on_unlabelled_rows",
        "sklearn_aae/_base.py",
        "return -(picked * labelled).sum() / labelled.sum().clamp_min(1)",
        "return -picked.mean()",
        "the cross-entropy (the classifiers' and the mixture encoder's, one "
        "function) also pulls the unlabelled rows (-1) to the first class",
        TASK_TESTS,
    ),
    Mutation(
        "task_transform_returns_the_class_block",
        "sklearn_aae/_tasks.py",
        "return self._encode(X)[:, self._fitted_heads() :]",
        "return self._encode(X)[:, : self._fitted_n_components()]",
        "transform returns the code's first n_components columns (class block "
        "first), not the style",
        TASK_TESTS,
    ),
    Mutation(
        "classifier_proba_columns_reversed",
        "sklearn_aae/_tasks.py",
        "        return self._head_probabilities(X)\n",
        "        return self._head_probabilities(X)[:, ::-1]\n",
        "predict_proba's columns are not in the order of classes_",
        TASK_TESTS,
    ),
    Mutation(
        "clusterer_proba_not_renormalised",
        "sklearn_aae/_tasks.py",
        "return np.where(total > 0, P / np.where(total > 0, total, 1), 1 / P.shape[1])",
        "return P",
        "the clusterer's predict_proba drops the empty heads' mass without "
        "renormalising the rows",
        TASK_TESTS,
    ),
    Mutation(
        "task_sample_ignores_y",
        "sklearn_aae/_tasks.py",
        "codes[:, :K] = np.eye(K, dtype=codes.dtype)[self._heads_of(y, len(codes))]",
        "codes[:, :K] = codes[:, :K]",
        "sample(y=k) draws the classes from the prior, whatever y",
        TASK_TESTS,
    ),
    Mutation(
        "embedding_head_penalty_pulls",
        "sklearn_aae/_tasks.py",
        "penalty = torch.relu(self.head_distance - d).mean()",
        "penalty = d.mean()",
        "the maps' penalty pulls every two heads together instead of pushing "
        "those closer than head_distance apart",
        TASK_TESTS,
    ),
    Mutation(
        "embedding_map_without_heads",
        "sklearn_aae/_tasks.py",
        "return codes[:, :K] @ W + codes[:, K:]",
        "return codes[:, K:]",
        "the maps' transform returns the style alone, not the head positions "
        "plus the style that the decoder reads",
        TASK_TESTS,
    ),
    Mutation(
        "embedding_head_positions_of_every_head",
        "sklearn_aae/_tasks.py",
        "self.head_positions_ = self._head_positions()[self.cluster_heads_]",
        "self.head_positions_ = self._head_positions()",
        "head_positions_ keeps the empty heads' rows (not one per found cluster)",
        TASK_TESTS,
    ),
    Mutation(
        "consensus_not_fine_tuned",
        "sklearn_aae/_tasks.py",
        "best._fine_tune(X, _heads_for(partition, probabilities[kept]))",
        "pass",
        "n_init with consensus=True keeps the lowest-loss fit without "
        "fine-tuning it to the consensus",
        TASK_TESTS,
    ),
    Mutation(
        "consensus_clusters_not_matched_to_heads",
        "sklearn_aae/_tasks.py",
        "    return head_of[partition]\n",
        "    return partition\n",
        "the consensus's cluster numbers are used as head numbers, so the "
        "fine-tuning moves every cluster to another head",
        TASK_TESTS,
    ),
    Mutation(
        "embedding_consensus_without_cross_entropy",
        "sklearn_aae/_tasks.py",
        "losses = super()._task_losses(z, yb)  # (a consensus's fine-tuning)",
        "losses = {}",
        "the maps' penalty replaces the clusterer's terms, so a map's n_init "
        "consensus is never fine-tuned to",
        TASK_TESTS,
    ),
    Mutation(
        "contrastive_term_not_trained",
        "sklearn_aae/_base.py",
        "terms = {**self._task_losses(z, yb), **regularizer.extra_terms(z, yb)}",
        "terms = {**self._task_losses(z, yb)}",
        "ConditionalPrior's contrastive term is neither trained nor recorded",
        _first("tests/test_conditional_prior.py"),
    ),
    Mutation(
        "contrastive_laplace_read_as_gaussian",
        "sklearn_aae/_mmd.py",
        'if self.kind == "gaussian":\n            t, inverse',
        "if True:\n            t, inverse",
        "the contrastive term reads a Laplace base's classes as Gaussian laws",
        _first("tests/test_conditional_prior.py"),
    ),
    Mutation(
        "contrastive_classes_equally_likely",
        "sklearn_aae/_mmd.py",
        "            logits = logits + self.log_weights\n",
        "            pass\n",
        "the contrastive term ignores the classes' training frequencies",
        _first("tests/test_conditional_prior.py"),
    ),
    Mutation(
        "n_init_interruption_runs_the_next_fit",
        "sklearn_aae/_tasks.py",
        "                break\n        if self.consensus and not interrupted:",
        "                pass\n        if self.consensus and not interrupted:",
        "Ctrl-C during one of n_init's fits ends only that fit",
        TASK_TESTS,
    ),
    Mutation(
        "cluster_labels_not_renumbered",
        "sklearn_aae/_tasks.py",
        "self.labels_ = np.searchsorted(self.cluster_heads_, heads)",
        "self.labels_ = heads",
        "labels_ are the raw head indices, not the found clusters numbered from 0",
        TASK_TESTS,
    ),
    Mutation(
        "cluster_heads_include_empty_heads",
        "sklearn_aae/_tasks.py",
        "self.cluster_heads_ = np.unique(heads)",
        "self.cluster_heads_ = np.arange(self.n_clusters)",
        "cluster_heads_ and n_clusters_ count the heads that hold no row",
        TASK_TESTS,
    ),
    Mutation(
        "n_init_keeps_the_worst_loss",
        "sklearn_aae/_tasks.py",
        "if best is None or losses[-1] < min(losses[:-1]):",
        "if best is None or losses[-1] > max(losses[:-1]):",
        "n_init keeps the initialisation with the highest final loss",
        TASK_TESTS,
    ),
    Mutation(
        "task_regularizer_matches_labels",
        "sklearn_aae/_tasks.py",
        """        # regulariser matches every code to the whole product prior.
        return 0""",
        """        # regulariser matches every code to the whole product prior.
        return len(getattr(self, "classes_", ()))""",
        "the classifiers' regulariser also matches labelled codes per class (the "
        "base's rule), with label slots in the discriminator",
        TASK_TESTS,
    ),
    Mutation(
        "default_style_scale_ignored",
        "sklearn_aae/_tasks.py",
        "prior = GaussianPrior(scale=_DEFAULT_STYLE_SCALE)",
        "prior = GaussianPrior()",
        "prior=None gives the task estimators a unit-scale style, not N(0, 0.1^2 I)",
        TASK_TESTS,
    ),
    Mutation(
        "architecture_code_width_ignored",
        "sklearn_aae/_base.py",
        'a.get("code_width", a["n_components"]),  # (states before tasks)',
        'a["n_components"],',
        "networks are rebuilt (fit, load) with n_components outputs, without the "
        "class block",
        _first("tests/test_tasks.py", "tests/test_persistence.py"),
    ),
    # A swiss roll cut into segments; the ConditionalPrior's rows-per-class warning.
    Mutation(
        "swiss_roll_segments_ignored",
        "sklearn_aae/_torch_priors.py",
        "u = (codes.to(self.dtype) + r) / K",
        "u = r",
        "SwissRollPrior(n_segments=K) samples every class from the whole roll",
        _first("tests/test_labels.py", "tests/test_priors.py"),
    ),
    Mutation(
        "rows_per_class_warning_dropped",
        "sklearn_aae/_base.py",
        "        if per_class < _MIN_ROWS_PER_CLASS:\n",
        "        if False:\n",
        "a ConditionalPrior with a few rows of each class per batch fits without a "
        "warning",
        _first("tests/test_conditional_prior.py"),
    ),
    # One discriminator per block of a product prior.
    Mutation(
        "separate_discriminators_read_the_whole_code",
        "sklearn_aae/_networks.py",
        "x[:, part * cw + start : part * cw + start + width]",
        "x[:, part * cw : part * cw + width]",
        "each block's discriminator reads the first block's columns, not its own",
        _first("tests/test_adversarial.py"),
    ),
    Mutation(
        "discriminator_blocks_ignored",
        "sklearn_aae/_adversarial.py",
        'if self.discriminator_blocks == "separate" and len(widths) > 1:',
        "if False:",
        "discriminator_blocks='separate' trains one joint discriminator",
        _first("tests/test_adversarial.py"),
    ),
    # The consistency term (every estimator; the task estimators' class blocks).
    Mutation(
        "consistency_left_out_of_the_loss",
        "sklearn_aae/_base.py",
        'losses["loss"] = losses["loss"] + self.consistency_weight * value',
        'losses["loss"] = losses["loss"] + 0 * value',
        "consistency_weight is recorded in history_ but not trained on",
        _first("tests/test_base.py", "tests/test_tasks.py"),
    ),
    Mutation(
        "consistency_without_noise",
        "sklearn_aae/_base.py",
        "noisy = self.encoder_.sample(xb + self.consistency_noise * noise, generator)",
        "noisy = self.encoder_.sample(xb, generator)",
        "the code's consistency term compares a row with itself (no noise)",
        _first("tests/test_base.py"),
    ),
    Mutation(
        "task_consistency_compares_a_row_with_itself",
        "sklearn_aae/_tasks.py",
        "log_q = noisy[:, :K].clamp_min(1e-30).log()",
        "log_q = p.clamp_min(1e-30).log()",
        "the class block's consistency term compares the clean heads with themselves",
        _first("tests/test_tasks.py"),
    ),
    Mutation(
        "class_code_transform_escapes_set_output",
        "sklearn_aae/_tasks.py",
        "class _ClassCodeMixin(TransformerMixin):",
        "class _ClassCodeMixin:",
        "the task estimators' transform ignores set_output (returns arrays)",
        _first("tests/test_common.py"),
    ),
    Mutation(
        "fitted_heads_read_from_parameters",
        "sklearn_aae/_tasks.py",
        "return self._fitted_code_width() - self._fitted_n_components()",
        "return self._n_heads()",
        "a fitted task model reads n_clusters as set after fit",
        _first("tests/test_tasks.py"),
    ),
    Mutation(
        "fitted_width_read_from_parameters",
        "sklearn_aae/_base.py",
        'return self._architecture["n_components"]',
        "return self.n_components",
        "a fitted model reads n_components as set after fit (names, inverse_transform)",
        _first("tests/test_base.py"),
    ),
    Mutation(
        "block_discriminators_read_the_code_for_statistics",
        "sklearn_aae/_networks.py",
        "x[:, part * cw + start : part * cw + start + width]",
        "x[:, start : start + width]",
        "separate discriminators read their code three times, not its batch statistics",
        _first("tests/test_adversarial.py"),
    ),
    Mutation(
        "streamed_rows_in_sorted_order",
        "sklearn_aae/_data.py",
        "self._rows_to_device(self.X[idx[order]][back])",
        "self._rows_to_device(self.X[idx[order]])",
        "sparse and memory-mapped batches trained in sorted order (per-row noise "
        "on other rows than the dense array's)",
        TASK_TESTS,
    ),
    Mutation(
        "missing_labels_made_a_class",
        "sklearn_aae/_data.py",
        "        _refuse_missing_labels(y)\n",
        "        pass\n",
        "a NaN in u becomes a class of its own",
        _first("tests/test_conditional_prior.py"),
    ),
    Mutation(
        "refused_fit_damages_the_fitted_model",
        "sklearn_aae/_base.py",
        "self.__dict__.update(before)",
        "pass",
        "a refused fit leaves classes_ / n_features_in_ of the refused data",
        _first("tests/test_conditional_prior.py"),
    ),
    Mutation(
        "state_parameters_required",
        "sklearn_aae/_utils.py",
        "setattr(obj, name, value)",
        "raise ValueError(name)",
        "a state (of an estimator or a prior) written before a parameter "
        "existed is refused",
        _first("tests/test_persistence.py"),
    ),
    Mutation(
        "single_class_u_silent",
        "sklearn_aae/_base.py",
        "        if len(self.classes_) == 1:\n            warnings.warn(",
        "        if False:\n            warnings.warn(",
        "a ConditionalPrior fitted with one class learns nothing, silently",
        _first("tests/test_conditional_prior.py"),
    ),
    Mutation(
        "continuous_u_silent",
        "sklearn_aae/_base.py",
        "if n_single > n_classes / 2:",
        "if False:",
        "a continuous u (a class per row) gets the batch-size advice",
        _first("tests/test_conditional_prior.py"),
    ),
    Mutation(
        "set_class_reads_parameter_heads",
        "sklearn_aae/_tasks.py",
        "K = self._fitted_heads()\n        codes[:, :K]",
        "K = self._n_heads()\n        codes[:, :K]",
        "inverse_transform and sample(y=...) write the one-hot over the style "
        "after set_params(n_clusters=...)",
        TASK_TESTS,
    ),
    Mutation(
        "tensor_prior_reads_parameter_width",
        "sklearn_aae/_base.py",
        "return tensor_prior(self.prior_, self._fitted_code_width(), device)",
        "return tensor_prior(self.prior_, self._code_width(), device)",
        "sample and score_samples use n_components as set after fit",
        _first("tests/test_base.py"),
    ),
    Mutation(
        "refused_warm_start_keeps_the_new_prior",
        "sklearn_aae/_base.py",
        "self.device_, self.prior_ = previous_device, previous_prior",
        "pass",
        "a refused warm start leaves the prior of the new parameters",
        _first("tests/test_base.py"),
    ),
    Mutation(
        "string_minus_one_is_a_class",
        "sklearn_aae/_data.py",
        'if y.dtype.kind in "US" and np.any(',
        "if False and np.any(",
        "['a', -1] made strings: the unlabelled rows silently a class '-1'",
        TASK_TESTS,
    ),
    Mutation(
        "batch_statistics_over_both_batches",
        "sklearn_aae/_adversarial.py",
        "inputs = self._inputs(torch.cat([real, fake]), labels, n_batches=2)",
        "inputs = self._inputs(torch.cat([real, fake]), labels, n_batches=1)",
        "the discriminator's batch statistics mix the prior's batch with the codes'",
        _first("tests/test_adversarial.py"),
    ),
    Mutation(
        "mixture_transform_is_the_training_mixture",
        "sklearn_aae/_networks.py",
        "            return codes[rows, log_p.argmax(1)], log_p, style\n",
        "            return (log_p.exp()[:, :, None] * codes).sum(1), log_p, style\n",
        "encoder='mixture' transforms to the responsibilities' mixture, between "
        "components, not into the most probable one",
        _first("tests/test_networks.py", "tests/test_labels.py"),
    ),
    Mutation(
        "mixture_components_not_from_the_prior",
        "sklearn_aae/_base.py",
        "        encoder.set_components(",
        "        (lambda *a: None)(",
        "encoder='mixture' keeps the placeholder components (zero means, unit "
        "covariances) instead of the prior's",
        _first("tests/test_labels.py"),
    ),
    Mutation(
        "mixture_cross_entropy_over_unlabelled_rows",
        "sklearn_aae/_base.py",
        "    labelled = y >= 0\n    picked",
        "    labelled = y >= -1\n    picked",
        "the mixture encoder's cross-entropy counts unlabelled rows (as class 0)",
        _first("tests/test_labels.py"),
    ),
    Mutation(
        "mixture_cross_entropy_left_out",
        "sklearn_aae/_base.py",
        '        if yb is not None:\n            terms["classification"]',
        '        if False:\n            terms["classification"]',
        "encoder='mixture' leaves the labelled rows' responsibilities to the "
        "regulariser alone (no cross-entropy)",
        _first("tests/test_labels.py"),
    ),
    Mutation(
        "mixture_style_term_left_out",
        "sklearn_aae/_base.py",
        "            value = regularizer.style_term(style.float())",
        "            value = None",
        "the MMD leaves the mixture encoder's styles unmatched (codes shrink "
        "into the middle of their components)",
        _first("tests/test_labels.py"),
    ),
    Mutation(
        "mixture_style_matched_to_the_ring",
        "sklearn_aae/_mmd.py",
        "            tstyle = tensor_prior(GaussianPrior(), self.n_components, "
        "self.device_)",
        "            tstyle = tprior",
        "the mixture encoder's styles are matched to the prior itself, not to "
        "the standard normal that its components map",
        _first("tests/test_labels.py"),
    ),
    Mutation(
        "mixture_consistency_target_is_transforms_code",
        "sklearn_aae/_networks.py",
        "four seeds of four.)\n    deterministic_sample = True",
        "four seeds of four.)\n    deterministic_sample = False",
        "the mixture encoder's consistency term targets transform's code (one "
        "component's) instead of the training code (measured: codes collapse)",
        _first("tests/test_labels.py"),
    ),
    Mutation(
        "mixture_style_term_not_trained",
        "sklearn_aae/_base.py",
        '                terms["style"] = (self.reg_weight, value)',
        '                terms["style"] = (0.0, value)',
        "the styles' MMD is recorded in history_ but not trained",
        _first("tests/test_labels.py"),
    ),
    Mutation(
        "mixture_components_frozen_under_warm_start",
        "sklearn_aae/_base.py",
        "            if isinstance(self.encoder_, MixtureEncoder):\n"
        "                self._set_mixture_components(self.encoder_)",
        "            pass",
        "warm_start keeps the mixture encoder's old components after the prior "
        "moved (transform disagrees with the prior)",
        _first("tests/test_labels.py"),
    ),
    Mutation(
        "sample_y_ignored",
        "sklearn_aae/_base.py",
        "        return tprior.sample_classes(codes, g)",
        "        return tprior.sample(n_samples, g)",
        "sample(y=k) draws from the whole prior, not from class k's part",
        _first("tests/test_labels.py"),
    ),
]


def _copy_repository(dest):
    """The files git tracks, and untracked ones it does not ignore, into dest."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        rel = Path(os.fsdecode(raw))
        src = REPO / rel
        if not src.is_file():  # deleted in the working tree
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)


def _locate(copy, mutation):
    """Where the mutation's snippet is: (path, note) or (None, reason)."""
    path = copy / mutation.file
    text = path.read_text() if path.is_file() else ""
    count = text.count(mutation.old)
    if count == 1:
        return path, ""
    if count > 1:
        return None, f"STALE: snippet found {count} times in {mutation.file}"
    hits = [
        p
        for p in sorted((copy / PACKAGE).rglob("*.py"))
        if mutation.old in p.read_text()
    ]
    if len(hits) == 1 and hits[0].read_text().count(mutation.old) == 1:
        moved = hits[0].relative_to(copy)
        return hits[0], f"STALE: moved to {moved} (update the entry)"
    where = ", ".join(str(p.relative_to(copy)) for p in hits) or "no file"
    return None, f"STALE: snippet not found (in {where})"


def _first_failure(output):
    for line in output.splitlines():
        match = re.match(r"^(FAILED|ERROR) (\S+)", line)
        if match:
            return match.group(2)
    return None


def _run_pytest(copy, tests, timeout):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)  # the copy's package comes from its cwd
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    cmd += ["-rfE", "--no-header", *tests]
    try:
        proc = subprocess.run(
            cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return None, ""
    return proc.returncode, proc.stdout + proc.stderr


def _check_copy_is_imported(copy):
    out = subprocess.run(
        [sys.executable, "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)"],
        cwd=copy,
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    ).stdout.strip()
    if not Path(out).resolve().is_relative_to(copy.resolve()):
        sys.exit(f"The tests would import {out}, not the copy in {copy}; stopping.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--list", action="store_true", help="list, do not run")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these mutations")
    parser.add_argument(
        "--full", action="store_true", help="run the whole suite for each mutation"
    )
    parser.add_argument(
        "--tests", nargs="+", metavar="PATH", help="these test paths for every mutation"
    )
    parser.add_argument(
        "--timeout", type=float, default=1200, help="seconds per mutation's tests"
    )
    args = parser.parse_args(argv)

    mutations = MUTATIONS
    if args.only:
        unknown = set(args.only) - {m.name for m in MUTATIONS}
        if unknown:
            parser.error(f"unknown mutation(s): {', '.join(sorted(unknown))}")
        mutations = [m for m in MUTATIONS if m.name in args.only]
    if args.list:
        for m in mutations:
            print(f"{m.name}: {m.description} ({m.file})")
        return 0

    width = max(len(m.name) for m in mutations)
    rows, all_good = [], True
    with tempfile.TemporaryDirectory(prefix="mutation_check_") as tmp:
        copy = Path(tmp) / "repo"
        _copy_repository(copy)
        _check_copy_is_imported(copy)
        pristine = {
            p: p.read_text() for p in (copy / PACKAGE).rglob("*.py") if p.is_file()
        }
        for m in mutations:
            for p, text in pristine.items():  # undo the previous mutation
                p.write_text(text)
            path, note = _locate(copy, m)
            if path is None:
                rows.append((m.name, "not run", note, 0.0))
                all_good = False
                print(f"{m.name}: {note}", flush=True)
                continue
            path.write_text(path.read_text().replace(m.old, m.new, 1))
            tests = ["tests"] if args.full else list(args.tests or m.tests)
            t0 = time.perf_counter()
            code, output = _run_pytest(copy, tests, args.timeout)
            seconds = time.perf_counter() - t0
            if code is None:
                caught, first = "timeout", f"(no result in {args.timeout:.0f} s)"
                all_good = False
            elif code == 0:
                caught, first = "NO", "(every selected test passed)"
                all_good = False
            elif code == 1:
                caught, first = "yes", _first_failure(output) or "(see pytest output)"
            else:
                caught, first = "error", f"(pytest exit status {code})"
                all_good = False
                print(output[-3000:])
            if note:
                first = f"{first}  [{note}]"
                all_good = False
            rows.append((m.name, caught, first, seconds))
            print(f"{m.name}: {caught} {first} ({seconds:.0f} s)", flush=True)

    print()
    print(f"{'mutation':<{width}} | caught? | first failing test")
    print(f"{'-' * width}-|---------|-{'-' * 60}")
    for name, caught, first, seconds in rows:
        print(f"{name:<{width}} | {caught:<7} | {first} ({seconds:.0f} s)")
    n_caught = sum(row[1] == "yes" for row in rows)
    print(f"\n{n_caught} of {len(rows)} mutations caught.")
    return 0 if all_good else 1


if __name__ == "__main__":
    sys.exit(main())
