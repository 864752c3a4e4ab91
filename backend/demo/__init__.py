"""The demo clinic of ``make run``: accounts and a course (:mod:`~backend.demo.seed`) and the demo
patient's analysed photo series (:mod:`~backend.demo.series`). Production never seeds.
"""
