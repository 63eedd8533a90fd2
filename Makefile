# The deep-learning canon, twice. `make help` lists the targets; every target sets up .venv first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROJECTS := mlp_mnist cnn_cifar char_rnn sentiment_lstm nanogpt vae_gan resnet_repro
BUILT := mlp_mnist cnn_cifar char_rnn sentiment_lstm nanogpt vae_gan resnet_repro
FAST ?= 0
export PYTHONPATH := $(CURDIR)

.DEFAULT_GOAL := help
.PHONY: help setup test lint format data all reports tensorboard clean $(PROJECTS) \
	$(addprefix eval-,$(PROJECTS)) $(addprefix bench-,$(PROJECTS)) study-mlp_mnist diagnose-mlp_mnist study-char_rnn char_rnn-numpy char_rnn-torch \
	study-cnn_cifar cnn_cifar-numpy cnn_cifar-torch nanogpt-numpy nanogpt-torch \
	study-nanogpt nanogpt-hour nanogpt-lstm-beside $(ABLATION) sentiment_lstm-numpy sentiment_lstm-torch \
	study-sentiment_lstm vae_gan-vaes-gan vae_gan-dcgan-gan study-vae_gan \
	vae_gan-study-a vae_gan-study-b resnet_repro-numpy resnet_repro-torch study-resnet_repro

help: ## list the targets
	@grep -hE '^[$$()a-zA-Z_%, -]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^\$$\(addprefix ([a-z]+-).*## /\1<project>\t/; s/:[^#]*## /\t/' \
		| awk -F'\t' '{printf "  %-22s %s\n", $$1, $$2}'
	@echo "  <project>              run a project's pipeline: $(PROJECTS) (FAST=1: a quick look)"

setup: $(STAMP) ## build .venv from nothing (exact pins; does nothing when already built)

$(STAMP): requirements.txt requirements.lock $(wildcard requirements-nodeps.txt)
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: install Python 3.11 or run 'make PYTHON=python3 ...'"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -c requirements.lock
	if [ -f requirements-nodeps.txt ]; then \
		$(PY) -m pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt; fi
	touch $(STAMP)

test: setup ## run the whole test suite (datasets from the cache, $REPRO_DATA_MIRROR or the network)
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: setup ## ruff lint and format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: setup ## ruff format and autofix
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

data: setup ## fetch and verify every dataset (cache, then $REPRO_DATA_MIRROR, then download)
	$(PY) -m shared.data

# ---- projects: `make <project>` runs its default pipeline (NumPy reference, PyTorch version, report) ----

MLP := $(PY) -m mlp_mnist.train
mlp_mnist: setup ## NumPy and PyTorch MLPs on MNIST, same recipe, then REPORT.md (about 10 min; FAST=1: 1 min)
ifeq ($(FAST),1)
	$(MLP) --config=mlp_mnist/configs/fast.py --impl=numpy --run=fast-numpy
	$(MLP) --config=mlp_mnist/configs/fast.py --impl=torch --run=fast-torch
else
	$(MLP) --config=mlp_mnist/configs/headline.py --impl=numpy --run=numpy-mlp-800x800
	$(MLP) --config=mlp_mnist/configs/headline.py --impl=torch --run=torch-mlp-800x800
endif
	$(PY) -m mlp_mnist.figures
	$(PY) -m shared.report mlp_mnist --readme

# AP2.1: each broken setup diagnosed, then again after each fix (log name:preset:fix flags); logs go into REPORT.md
DIAGNOSE_CASES := lr_too_high:lr_too_high: lr_too_high_fixed:lr_too_high:--lr=0.05 \
	zero_init:zero_init: zero_init_fixed:zero_init:--init=he \
	deep_sigmoid:unnormalised_deep_sigmoid: deep_sigmoid_normalised:unnormalised_deep_sigmoid:--normalise=true \
	deep_sigmoid_relu:unnormalised_deep_sigmoid:--normalise=true,--activation=relu,--init=he,--lr=0.01 \
	wrong_backward:wrong_backward: wrong_backward_fixed:wrong_backward:--broken= healthy:healthy:
diagnose-mlp_mnist: setup ## run mlp_mnist.diagnose on four broken setups and their fixes (logs in results/)
	@set -e; for case in $(DIAGNOSE_CASES); do name=$${case%%:*}; rest=$${case#*:}; preset=$${rest%%:*}; \
		flags=$$(echo $${rest#*:} | tr , ' '); out=mlp_mnist/results/diagnose_$$name.txt; \
		$(PY) -m mlp_mnist.diagnose --preset=$$preset $$flags > $$out; echo "$$name: $$(tail -n 1 $$out)"; \
	done

study-mlp_mnist: setup ## the MLP experiments: sweep, activations, optimizers, regularisation, init, augmented 99%
	$(PY) -m mlp_mnist.studies --study=all
	$(PY) -m mlp_mnist.init_study
	$(MAKE) --no-print-directory diagnose-mlp_mnist
	$(PY) -m mlp_mnist.figures
	$(PY) -m shared.report mlp_mnist --readme

CNN := $(PY) -m cnn_cifar.train
# NumPy on one core, the two PyTorch runs on the other (all 1 thread): ~25 min instead of ~38 in a row.
cnn_cifar: setup ## NumPy and PyTorch CNNs on CIFAR-10, then REPORT.md (~25 min predicted; FAST=1: ~5 min)
ifeq ($(FAST),1)
	$(CNN) --config=cnn_cifar/configs/simple.py --config=cnn_cifar/configs/fast.py --impl=numpy --run=fast-numpy-simplecnn
	$(CNN) --config=cnn_cifar/configs/simple.py --config=cnn_cifar/configs/fast.py --impl=torch --run=fast-torch-simplecnn
	$(CNN) --config=cnn_cifar/configs/lenet_torch.py --config=cnn_cifar/configs/fast.py --run=fast-torch-lenet
	$(PY) -m cnn_cifar.fast94 --epochs=1 --train_subset=4000 --tta=0 --run=fast-fast94 --group=fast
	$(PY) -m cnn_cifar.transfer --config=cnn_cifar/configs/transfer_quick.py
else
	$(MAKE) -j2 --no-print-directory cnn_cifar-numpy cnn_cifar-torch
endif
	$(PY) -m cnn_cifar.figures
	$(PY) -m shared.report cnn_cifar --readme

cnn_cifar-numpy:
	$(CNN) --config=cnn_cifar/configs/simple.py --impl=numpy --run=numpy-simplecnn --threads=1 --progress=false

cnn_cifar-torch:
	$(CNN) --config=cnn_cifar/configs/simple.py --impl=torch --run=torch-simplecnn --threads=1 --progress=false
	$(CNN) --config=cnn_cifar/configs/lenet_torch.py --threads=1 --progress=false

study-cnn_cifar: setup ## augmentation ablation, transfer learning (pretrained vs scratch), the fast 94% CNN
	$(CNN) --config=cnn_cifar/configs/simple.py --impl=torch --augment=false --save_weights=false \
		--run=torch-simplecnn-noaug --group=augmentation --threads=1 --progress=false
	$(PY) -m cnn_cifar.transfer
	$(PY) -m cnn_cifar.fast94 --config=cnn_cifar/configs/fast94.py --save_weights
	$(PY) -m cnn_cifar.figures
	$(PY) -m shared.report cnn_cifar --readme

CHAR := $(PY) -m char_rnn.train
# The runs train side by side, one core each (all use 1 thread), so the pipeline takes as long as the
# 60-minute PyTorch run rather than the sum of the four.
char_rnn: setup ## char-level RNN/LSTM on tiny Shakespeare, NumPy and PyTorch side by side, then REPORT.md (~65 min; FAST=1: 1 min)
ifeq ($(FAST),1)
	$(CHAR) --config=char_rnn/configs/fast.py --impl=numpy --cell=rnn --run=fast-numpy-rnn --threads=1
	$(CHAR) --config=char_rnn/configs/fast.py --impl=numpy --cell=lstm --run=fast-numpy-lstm --threads=1
	$(CHAR) --config=char_rnn/configs/fast.py --impl=torch --cell=lstm --run=fast-torch-lstm --threads=1
else
	$(MAKE) -j2 --no-print-directory char_rnn-numpy char_rnn-torch
endif
	$(PY) -m char_rnn.figures
	$(PY) -m shared.report char_rnn --readme

# One core: the NumPy RNN, the NumPy LSTM and its PyTorch twin (the same recipe, --impl=torch; ~45 min in all).
# The other: the 60-minute PyTorch headline LSTM.
char_rnn-numpy:
	$(CHAR) --config=char_rnn/configs/rnn_numpy.py --threads=1 --progress=false
	$(CHAR) --config=char_rnn/configs/lstm_numpy.py --threads=1 --progress=false
	$(CHAR) --config=char_rnn/configs/lstm_numpy.py --impl=torch --run=torch-lstm-1x512 --threads=1 --progress=false

char_rnn-torch:
	$(CHAR) --config=char_rnn/configs/lstm_torch.py --threads=1 --progress=false

study-char_rnn: setup ## RNN vs LSTM at equal parameters (~346k) and equal training time (10 min each)
	$(CHAR) --config=char_rnn/configs/rnn_vs_lstm_rnn.py --threads=1
	$(CHAR) --config=char_rnn/configs/rnn_vs_lstm_lstm.py --threads=1
	$(PY) -m char_rnn.figures
	$(PY) -m shared.report char_rnn --readme

SENT := $(PY) -m sentiment_lstm.train
SENT_FAST := $(SENT) --config=sentiment_lstm/configs/fast.py --save_weights=true --threads=1 --progress=false
# Two cores, one thread each. One: the baselines (~4 min), the NumPy LSTM (30-minute training budget; early
# stopping usually ends it sooner), then its PyTorch twin. The other: the PyTorch BiLSTM, the longest run.
sentiment_lstm: setup ## IMDB: bag-of-words baselines, NumPy LSTM, PyTorch BiLSTM side by side, then REPORT.md (FAST=1: a few min)
ifeq ($(FAST),1)
	$(PY) -m sentiment_lstm.baselines --train_subset=2000 --eval_subset=1000 --run_prefix=fast- --group=fast \
		--threads=1 --progress=false
	$(SENT_FAST) --impl=numpy --run=fast-numpy-lstm
	$(SENT_FAST) --impl=torch --run=fast-torch-lstm
	$(SENT_FAST) --impl=torch --model=bilstm --pool=meanmax --run=fast-bilstm
else
	$(MAKE) -j2 --no-print-directory sentiment_lstm-numpy sentiment_lstm-torch
endif
	$(PY) -m sentiment_lstm.figures
	$(PY) -m shared.report sentiment_lstm --readme

sentiment_lstm-numpy:
	$(PY) -m sentiment_lstm.baselines --threads=1 --progress=false
	$(SENT) --config=sentiment_lstm/configs/lstm_numpy.py --threads=1 --progress=false
	$(SENT) --config=sentiment_lstm/configs/lstm_numpy.py --config=sentiment_lstm/configs/lstm_twin.py --threads=1 \
		--progress=false

sentiment_lstm-torch:
	$(SENT) --config=sentiment_lstm/configs/bilstm.py --threads=1 --progress=false

study-sentiment_lstm: setup ## IMDB: MiniLM (pretrained) fine-tuned with LoRA beside the LSTMs (FAST=1: a quick look)
ifeq ($(FAST),1)
	$(PY) -m sentiment_lstm.train --config=sentiment_lstm/configs/minilm_fast.py --progress=false
else
	$(PY) -m sentiment_lstm.train --config=sentiment_lstm/configs/minilm.py --progress=false
endif
	$(PY) -m sentiment_lstm.figures
	$(PY) -m shared.report sentiment_lstm --readme

GPT := $(PY) -m nanogpt.train
# The twins train side by side, one core each (1 thread each), so the pipeline takes as long as the slower one.
nanogpt: setup ## nanoGPT's CPU "baby GPT" on tiny Shakespeare, NumPy and PyTorch side by side, then REPORT.md (~5 min predicted; FAST=1: ~1 min)
ifeq ($(FAST),1)
	$(GPT) --config=nanogpt/configs/fast.py --impl=numpy --run=fast-numpy-gpt --threads=1
	$(GPT) --config=nanogpt/configs/fast.py --impl=torch --run=fast-torch-gpt --threads=1
else
	$(MAKE) -j2 --no-print-directory nanogpt-numpy nanogpt-torch
endif
	$(PY) -m nanogpt.figures
	$(PY) -m shared.report nanogpt --readme

nanogpt-numpy:
	$(GPT) --config=nanogpt/configs/nanogpt_cpu.py --impl=numpy --run=numpy-gpt-4x128 --threads=1 --progress=false

nanogpt-torch:
	$(GPT) --config=nanogpt/configs/nanogpt_cpu.py --impl=torch --run=torch-gpt-4x128 --threads=1 --progress=false

# The hour and GPT vs LSTM: the 6x160 GPT and char_rnn's LSTM recipe (about the same parameter count) trained side
# by side for 60 minutes each, one core each; then the rotary-vs-learned ablation at nanoGPT's CPU recipe (3 seeds
# each, two at a time); then, where a nanoGPT checkout is named (NANOGPT=...), the sprint beside nanoGPT's own code.
ABLATION := $(foreach pos,learned rotary,$(foreach seed,0 1 2,ablation-$(pos)-s$(seed)))
study-nanogpt: setup ## the 60-minute GPT beside char_rnn's LSTM, the rotary ablation, the sprint vs nanoGPT (~75 min)
	$(MAKE) -j2 --no-print-directory nanogpt-hour nanogpt-lstm-beside
	$(MAKE) -j2 --no-print-directory $(ABLATION)
	@if [ -n "$$NANOGPT" ]; then bash nanogpt/side_by_side.sh; \
		else echo "side by side with nanoGPT skipped: set NANOGPT to a prepared nanoGPT checkout (nanogpt/side_by_side.sh)"; fi
	$(PY) -m nanogpt.figures
	$(PY) -m shared.report nanogpt --readme

nanogpt-hour:
	$(GPT) --config=nanogpt/configs/hour.py --run=gpt-6x160-rotary-hour --group=hour --progress=false

nanogpt-lstm-beside:
	$(CHAR) --config=char_rnn/configs/lstm_torch.py --run=torch-lstm-2x384-beside-gpt --group=gpt-vs-lstm \
		--save_weights=false --threads=1 --progress=false

$(ABLATION): ablation-%:
	$(GPT) --config=nanogpt/configs/nanogpt_cpu.py --impl=torch --precision=bf16 --fused=true \
		--pos=$(word 1,$(subst -, ,$*)) --seed=$(patsubst s%,%,$(word 2,$(subst -, ,$*))) --group=ablation \
		--run=ablation-$* --save_weights=false --progress=false --threads=1

VAEGAN := $(PY) -m vae_gan.train
VAEGAN_FAST := $(VAEGAN) --train_subset=6000 --eval_subset=2000 --epochs=2 --fid_samples=2000 --group=fast \
	--save_weights=false --threads=1 --progress=false
# The classifier first, on both cores (every FID and class histogram reads its weights); then two lanes of one
# thread each: the VAE twins and the NumPy MLP GAN; DCGAN and the MLP GAN's PyTorch twin.
vae_gan: setup ## MNIST: VAEs and GANs in NumPy and PyTorch, the classifier, FIDs, then REPORT.md (26 min here; FAST=1: 1 min)
ifeq ($(FAST),1)
	$(VAEGAN_FAST) --config=vae_gan/configs/vae.py --impl=numpy --run=fast-numpy-vae
	$(VAEGAN_FAST) --config=vae_gan/configs/vae.py --impl=torch --run=fast-torch-vae
	$(VAEGAN_FAST) --config=vae_gan/configs/gan.py --impl=numpy --run=fast-numpy-gan
	$(VAEGAN_FAST) --config=vae_gan/configs/dcgan.py --run=fast-dcgan
else
	$(PY) -m vae_gan.classifier --save_weights --threads=2 --progress=false
	$(MAKE) -j2 --no-print-directory vae_gan-vaes-gan vae_gan-dcgan-gan
endif
	$(PY) -m vae_gan.figures
	$(PY) -m shared.report vae_gan --readme

vae_gan-vaes-gan:
	$(VAEGAN) --config=vae_gan/configs/vae.py --impl=numpy --threads=1 --progress=false
	$(VAEGAN) --config=vae_gan/configs/vae.py --impl=torch --threads=1 --progress=false
	$(VAEGAN) --config=vae_gan/configs/gan.py --impl=numpy --threads=1 --progress=false

vae_gan-dcgan-gan:
	$(VAEGAN) --config=vae_gan/configs/dcgan.py --threads=1 --progress=false
	$(VAEGAN) --config=vae_gan/configs/gan.py --impl=torch --threads=1 --progress=false

# The GAN study: the MLP GAN (PyTorch twin of configs/gan.py, 30 epochs) with one setting changed per run, beside
# the headline torch-gan-mlp-z64; then the importance-weighted test NLL of the binarised VAEs. Two lanes.
GAN_STUDY := $(VAEGAN) --config=vae_gan/configs/gan.py --impl=torch --group=gan-study --save_weights=false \
	--threads=1 --progress=false
study-vae_gan: setup ## the GAN study (a failing run and its fix, label smoothing, lr and beta1, minimax loss), the binarised NLLs
	$(MAKE) -j2 --no-print-directory vae_gan-study-a vae_gan-study-b
	$(PY) -m vae_gan.figures
	$(PY) -m shared.report vae_gan --readme

vae_gan-study-a:
	$(GAN_STUDY) --lr=1e-3 --beta1=0.9 --run=gan-study-lr1e-3-beta0.9
	$(GAN_STUDY) --lr=1e-3 --run=gan-study-lr1e-3
	$(GAN_STUDY) --g_loss=minimax --run=gan-study-minimax
	$(VAEGAN) --config=vae_gan/configs/vae_binarized.py --threads=1 --progress=false

vae_gan-study-b:
	$(GAN_STUDY) --beta1=0.9 --run=gan-study-beta0.9
	$(GAN_STUDY) --real_label=0.9 --run=gan-study-smooth0.9
	$(GAN_STUDY) --lr=2e-3 --run=gan-study-lr2e-3
	$(VAEGAN) --config=vae_gan/configs/convvae_binarized.py --threads=1 --progress=false

RESNET := $(PY) -m resnet_repro.train
# ResNet-20 on the paper's recipe with a schedule 8/3 shorter (configs/resnet20_short.py), on both cores; then the
# NumPy ResNet-8 and its PyTorch twin side by side, one thread each.
resnet_repro: setup ## CIFAR-10 ResNets: ResNet-20 on a shortened paper schedule, the NumPy/PyTorch ResNet-8 twins, REPORT.md (54 min on a Zen 5; FAST=1: ~4 min)
ifeq ($(FAST),1)
	$(RESNET) --config=resnet_repro/configs/fast.py --threads=2 --progress=false
	$(RESNET) --config=resnet_repro/configs/resnet8_twins.py --impl=numpy --run=fast-numpy-resnet8 --group=fast \
		--iterations=180 --milestones=120 --eval_every=60 --val_size=1000 --test_subset=2000 --save_weights=false \
		--threads=2 --progress=false
else
	$(RESNET) --config=resnet_repro/configs/paper.py --config=resnet_repro/configs/resnet20_short.py --threads=2 \
		--progress=false
	$(MAKE) -j2 --no-print-directory resnet_repro-numpy resnet_repro-torch
endif
	$(PY) -m resnet_repro.figures
	$(PY) -m shared.report resnet_repro --readme

resnet_repro-numpy:
	$(RESNET) --config=resnet_repro/configs/resnet8_twins.py --impl=numpy --run=numpy-resnet8 --threads=1 --progress=false

resnet_repro-torch:
	$(RESNET) --config=resnet_repro/configs/resnet8_twins.py --impl=torch --run=torch-resnet8 --threads=1 --progress=false

PAPER := $(RESNET) --config=resnet_repro/configs/paper.py --bf16=true --threads=2 --progress=false
FIG6 := $(RESNET) --config=resnet_repro/configs/figure6.py --threads=2 --progress=false
# Hours on a 2-core CPU: every run checkpoints every 2,000 iterations and resumes when its command is rerun.
study-resnet_repro: setup ## Table 6 (the paper's recipe at each depth) and Figure 6 (8k iterations, ~2 h); hours, resumable
	$(PAPER)
	$(PAPER) --depth=32 --run=resnet32
	$(PAPER) --depth=44 --run=resnet44
	$(PAPER) --depth=56 --run=resnet56
	$(PAPER) --config=resnet_repro/configs/resnet110.py
	$(FIG6) --depth=20 --plain=true --run=fig6-plain20
	$(FIG6) --depth=56 --plain=true --run=fig6-plain56
	$(FIG6) --depth=20 --run=fig6-resnet20
	$(FIG6) --depth=56 --run=fig6-resnet56
	$(PY) -m resnet_repro.figures
	$(PY) -m shared.report resnet_repro --readme

$(filter-out $(BUILT),$(PROJECTS)):
	@echo "$@: not built yet; its issue is open. Built so far: $(BUILT)"; exit 1

$(addprefix eval-,$(PROJECTS)): eval-%: setup ## re-evaluate the committed weights on the test set beside their run record's claim
	@if [ -f $*/evaluate.py ]; then $(PY) -m $*.evaluate; else echo "$*: not built yet (no committed weights)"; exit 1; fi

$(addprefix bench-,$(PROJECTS)): bench-%: setup ## NumPy vs PyTorch speed side by side, ending with the ratio (kept in results/bench.txt)
	@if [ ! -f $*/bench.py ]; then echo "$*: not built yet (no benchmark)"; exit 1; fi
	@mkdir -p $*/results && set -o pipefail && $(PY) -m $*.bench | tee $*/results/bench.txt


all: $(BUILT) reports ## every built project's pipeline, then all reports

reports: setup ## regenerate every REPORT.md table and the README table from the run records
	$(PY) -m shared.report --all

tensorboard: setup ## serve the TensorBoard logs of every run (runs/)
	$(PY) -m tensorboard.main --logdir runs --bind_all

clean: ## remove caches and TensorBoard logs (keeps .venv, data/, results and committed weights)
	rm -rf runs .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
