"""Quality metrics for admins, reviewers and engineers (issue 13): agreement, annotators, throughput, the model per
version and live, slices and the stopping signal. Each section is computed by a module here (with the reference
libraries: krippendorff, statsmodels, scikit-learn, NLTK), assembled and cached by `metrics`. Imported lazily by the
web process: nothing here is loaded at start."""
