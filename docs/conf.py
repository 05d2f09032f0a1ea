"""Sphinx configuration of the sklearn_aae documentation.

Build (warnings are errors)::

    python -m sphinx -W -b html docs docs/_build/html

Skip running the gallery examples (their pages are still built, without
figures or output), for a fast CI variant::

    python -m sphinx -W -b html -D plot_gallery=0 docs docs/_build/html
"""

import os
import re
import sys
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..")))

import torch  # noqa: E402

import sklearn_aae  # noqa: E402
from sklearn_aae import priors  # noqa: E402

project = "sklearn-aae"
author = "the sklearn-aae developers"
copyright = "the sklearn-aae developers"  # noqa: A001
version = release = sklearn_aae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"
default_role = "literal"

# -- autodoc / autosummary / numpydoc ---------------------------------------
autosummary_generate = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
# Methods are listed by the class template (see _templates/autosummary/class.rst).
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = False
numpydoc_xref_param_type = False

# -- sphinx-gallery ----------------------------------------------------------
# Examples named plot_*.py are executed by default; ``-D plot_gallery=0``
# builds the gallery pages without running them. examples/quickstart.py is the
# README's plain script (no RST title), so it stays out of the gallery.
sphinx_gallery_conf = {
    "examples_dirs": os.path.join(HERE, "..", "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py|(^|[/\\])quickstart\.py$",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "min_reported_time": 1,
    "remove_config_comments": True,
    "doc_module": ("sklearn_aae",),
    "backreferences_dir": "generated/backreferences",
}

# The examples train small networks, for which torch's intra-op threads only
# add overhead, and on a busy CI runner with few cores the threads can slow
# training down a hundredfold. One thread keeps the gallery fast everywhere.
torch.set_num_threads(1)

# Examples train for only a few epochs to stay under a minute each; the
# estimators then warn that they did not converge. That is expected here.
warnings.filterwarnings(
    "ignore", message="Stochastic optimizer: maximum iterations", category=Warning
)
warnings.filterwarnings(
    "ignore", message="Matplotlib is currently using agg", category=UserWarning
)

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-aae {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_sidebars = {"index": [], "getting_started": [], "design": []}


# -- API reference completeness ----------------------------------------------
def _check_api_reference(app):
    """Fail (a warning, an error under -W) when a public name is undocumented."""
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    with open(os.path.join(HERE, "api.rst"), encoding="utf-8") as f:
        text = f.read()
    listed = set(re.findall(r"^\s{3}(\w+)\s*$", text, flags=re.M))
    public = [n for n in sklearn_aae.__all__ if not n.startswith("__")]
    public += list(priors.__all__)
    missing = sorted(set(public) - listed)
    if missing:
        logger.warning(
            "docs/api.rst does not list these public names: %s", ", ".join(missing)
        )


def setup(app):
    app.connect("builder-inited", _check_api_reference)
