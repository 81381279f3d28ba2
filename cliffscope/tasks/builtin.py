"""The tasks that ship with cliffscope: two procedural ones and nine real benchmarks.

Real-task column names, configs and splits are copied from each dataset's card (the
`dataset_info.features` block of its README on the hub), cited next to each definition; the
prompts follow LLaVA-1.5 / lmms-eval so numbers stay comparable with published ones. A user
can point any of them at a local copy (`--data PATH`) and remap columns (`--set columns.X=Y`).
"""

from __future__ import annotations

from cliffscope.tasks.spec import Columns, RowFilter, TaskSpec

#: LLaVA-1.5's short-answer instruction (llava/eval, lmms-eval `post_prompt`).
SHORT = "{question}\nAnswer the question using a single word or phrase."
#: LLaVA-1.5 / lmms-eval ScienceQA layout: context, question, lettered options.
CHOICE = "{context}{question}\n{choices}\nAnswer with the option's letter from the given choices directly."
#: lmms-eval's COCO / Flickr30k captioning prompt.
CAPTION = "Provide a one-sentence caption for the provided image."


def _shapes_caption_prompt() -> str:
    from cliffscope.tasks.shapes import CAPTION_PROMPT

    return CAPTION_PROMPT


def builtin_specs() -> list[TaskSpec]:
    """Every built-in task, procedural first."""
    return [
        TaskSpec(
            name="shapes-vqa",
            description="procedural coloured shapes, 'What color is the circle?' (offline)",
            source="shapes",
            split="procedural",
            # The bare question: the shipped demo model was trained on exactly this prompt
            # (a build trained with the LLaVA-style answer-format suffix reached only 43%).
            prompt_template="{question}",
            answer_kind="short",
            metric="exact_match",
            max_new_tokens=8,
        ),
        TaskSpec(
            name="shapes-caption",
            description="procedural coloured shapes, short left-to-right captions (offline)",
            source="shapes",
            split="procedural",
            prompt_template=_shapes_caption_prompt(),
            answer_kind="caption",
            metric="cider",
            max_new_tokens=24,
        ),
        # https://huggingface.co/datasets/lmms-lab/VQAv2 (README dataset_info): question_type,
        # multiple_choice_answer, answers: list of {answer, answer_confidence, answer_id},
        # image_id, answer_type, question_id (int64), question, image; splits validation,
        # testdev, test (only validation has answers).
        TaskSpec(
            name="vqav2",
            description="VQAv2 val: open questions on COCO images, 10 human answers each",
            hub_id="lmms-lab/VQAv2",
            split="validation",
            columns=Columns(
                id="question_id",
                answers="answers[].answer",
                meta=["question_type", "answer_type", "image_id"],
            ),
            prompt_template=SHORT,
            metric="vqa_accuracy",
            max_new_tokens=16,
        ),
        # https://huggingface.co/datasets/lmms-lab/textvqa (README dataset_info): image_id,
        # question_id (int32), question, question_tokens, image, image_width, image_height,
        # flickr_original_url, flickr_300k_url, answers (sequence of string), image_classes,
        # set_name, ocr_tokens; splits train, validation, test.
        TaskSpec(
            name="textvqa",
            description="TextVQA val: questions that need reading text in the image",
            hub_id="lmms-lab/textvqa",
            split="validation",
            columns=Columns(id="question_id", answers="answers", meta=["image_id"]),
            prompt_template=SHORT,
            metric="vqa_accuracy",
            max_new_tokens=16,
        ),
        # https://huggingface.co/datasets/lmms-lab/GQA (README dataset_info): config
        # testdev_balanced_instructions has id, imageId, question, answer, fullAnswer,
        # isBalanced, groups, entailed, equivalent, types, annotations, semantic, semanticStr;
        # config testdev_balanced_images has id, image; both split testdev. Images are joined
        # on imageId -> id, as lmms-eval's gqa task does.
        TaskSpec(
            name="gqa",
            description="GQA testdev-balanced: compositional questions on scene images",
            hub_id="lmms-lab/GQA",
            config_name="testdev_balanced_instructions",
            split="testdev",
            images_config="testdev_balanced_images",
            columns=Columns(id="id", image_key="imageId", answer="answer", meta=["fullAnswer"]),
            prompt_template=SHORT,
            metric="exact_match",
            max_new_tokens=16,
        ),
        # https://huggingface.co/datasets/lmms-lab/ChartQA (README dataset_info): type,
        # question, answer (string), image; split test (2,500 rows, no id column: row number).
        TaskSpec(
            name="chartqa",
            description="ChartQA test: questions about charts (relaxed accuracy)",
            hub_id="lmms-lab/ChartQA",
            split="test",
            columns=Columns(answer="answer", meta=["type"]),
            prompt_template=SHORT,
            metric="relaxed_accuracy",
            max_new_tokens=16,
        ),
        # https://huggingface.co/datasets/lmms-lab/DocVQA (README dataset_info): config DocVQA
        # with questionId (string), question, question_types, image, docId, ucsf_document_id,
        # ucsf_document_page_no, answers (sequence of string), data_split; splits train,
        # validation, test (test answers are withheld).
        TaskSpec(
            name="docvqa",
            description="DocVQA val: questions about scanned documents (ANLS)",
            hub_id="lmms-lab/DocVQA",
            config_name="DocVQA",
            split="validation",
            columns=Columns(id="questionId", answers="answers", meta=["question_types", "docId"]),
            prompt_template=SHORT,
            metric="anls",
            max_new_tokens=32,
        ),
        # https://huggingface.co/datasets/lmms-lab/ScienceQA (README dataset_info): config
        # ScienceQA-IMG with image, question, choices (sequence of string), answer (int8 index
        # into choices), hint, task, grade, subject, topic, category, skill, lecture, solution;
        # splits validation, test. No id column: row number.
        TaskSpec(
            name="scienceqa-img",
            description="ScienceQA-IMG test: multiple-choice science questions with an image",
            hub_id="lmms-lab/ScienceQA",
            config_name="ScienceQA-IMG",
            split="test",
            columns=Columns(
                answer="answer",
                choices="choices",
                context="hint",
                meta=["subject", "grade", "category"],
            ),
            filters=[RowFilter(column="image", present=True)],
            prompt_template=CHOICE,
            answer_kind="choice",
            metric="choice_accuracy",
            max_new_tokens=8,
        ),
        # https://huggingface.co/datasets/lmms-lab/POPE (README dataset_info, same schema as
        # its duplicates e.g. giobin/POPE): id, question_id, question, answer ("yes"/"no"),
        # image_source, image, category (adversarial/popular/random); split test (9,000 rows).
        # question_id restarts per category, so `id` is the sample id.
        TaskSpec(
            name="pope",
            description="POPE: 'Is there a <object> in the image?' hallucination probe",
            hub_id="lmms-lab/POPE",
            split="test",
            columns=Columns(id="id", answer="answer", meta=["category", "question_id"]),
            prompt_template=SHORT,
            metric="yes_no_accuracy",
            max_new_tokens=8,
        ),
        # https://huggingface.co/datasets/lmms-lab/COCO-Caption2017 (README dataset_info):
        # question_id (string), image, question, answer (sequence of string: the captions), id,
        # license, file_name, coco_url, height, width, date_captured; splits val, test.
        TaskSpec(
            name="coco-caption",
            description="COCO Caption 2017 val: five reference captions per image (CIDEr)",
            hub_id="lmms-lab/COCO-Caption2017",
            split="val",
            columns=Columns(id="question_id", question=None, answers="answer", meta=["file_name"]),
            prompt_template=CAPTION,
            answer_kind="caption",
            metric="cider",
            max_new_tokens=64,
        ),
        # https://huggingface.co/datasets/lmms-lab/flickr30k (README dataset_info): image,
        # caption (sequence of string), sentids, img_id (string), filename; split test.
        TaskSpec(
            name="flickr30k",
            description="Flickr30k test: five reference captions per image (CIDEr)",
            hub_id="lmms-lab/flickr30k",
            split="test",
            columns=Columns(id="img_id", question=None, answers="caption", meta=["filename"]),
            prompt_template=CAPTION,
            answer_kind="caption",
            metric="cider",
            max_new_tokens=64,
        ),
    ]
